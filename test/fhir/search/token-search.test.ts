import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/store/db.js';
import { openTestDb } from '../../support/test-db.js';
import { all } from './fixtures.js';
import { ids, insertResources } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, all);
});
afterAll(async () => cleanup());

const sorted = async (type: string, q: string) => (await ids(db, type, q)).sort();

describe('token search', () => {
  it('matches a code in any system, system|code, |code and system|', async () => {
    expect(await sorted('Patient', 'gender=male')).toEqual(['p1']);
    expect(await sorted('Patient', 'gender=male,female')).toEqual(['p1', 'p2']);
    expect(await sorted('Observation', 'code=http://loinc.org|8310-5')).toEqual(['o-temp']);
    expect(await sorted('Observation', 'code=http://snomed.info/sct|8310-5')).toEqual([]);
    expect(await sorted('Observation', 'code=http://loinc.org|')).toEqual(['o-bp', 'o-range', 'o-temp', 'o-weight']);
    expect(await sorted('Patient', 'gender=|male')).toEqual(['p1']);
    expect(await sorted('Patient', 'identifier=http://hospital/mrn|MRN-2')).toEqual(['p2']);
    expect(await sorted('Patient', 'identifier=MRN-1')).toEqual(['p1']);
  });

  it('handles booleans, _id, telecom and escaped separators', async () => {
    expect(await sorted('Patient', 'active=true')).toEqual(['p1']);
    expect(await sorted('Patient', 'active=false')).toEqual(['p2']);
    expect(await sorted('Patient', '_id=p1,p3')).toEqual(['p1', 'p3']);
    expect(await sorted('Patient', 'phone=555-1234')).toEqual(['p1']);
    expect(await sorted('Patient', 'email=peter@example.org')).toEqual(['p1']);
    expect(await sorted('Patient', 'identifier=http://other\\|sys|a\\,b\\$c\\|d')).toEqual(['p2']);
    expect(await sorted('Patient', '_tag=http://tags|vip')).toEqual(['p1']);
    expect(await sorted('Patient', 'deceased=true')).toEqual(['p3']);
  });

  it('answers _id from the primary key, in every form a token takes', async () => {
    const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM resources WHERE EXISTS (SELECT 1 FROM unnest(tokens) t WHERE t LIKE '\\_id%')`);
    expect(rows[0].n).toBe(0); // not stored as tokens: the primary key serves them
    expect(await sorted('Patient', '_id=|p2')).toEqual(['p2']);
    expect(await sorted('Patient', '_id=http://example.org|p2')).toEqual([]);
    expect(await sorted('Patient', '_id:not=p1')).toEqual(['p2', 'p3', 'p4']);
    expect(await sorted('Patient', '_id=p1&gender=female')).toEqual([]);
    expect(await sorted('Observation', 'subject._id=p1')).toEqual(['o-bp', 'o-temp']);
  });

  it('AND across repeated parameters, OR within one', async () => {
    expect(await sorted('Observation', 'status=final&code=http://loinc.org|')).toEqual(['o-bp', 'o-weight']);
    expect(await sorted('Observation', 'status=final&status=preliminary')).toEqual([]);
    expect(await sorted('Observation', 'status=final,preliminary&subject=Patient/p1')).toEqual(['o-bp', 'o-temp']);
  });

  it(':not excludes the code, including resources without the element', async () => {
    expect(await sorted('Patient', 'gender:not=male')).toEqual(['p2', 'p3', 'p4']);
    expect(await sorted('Patient', 'gender:not=male,female')).toEqual(['p3', 'p4']);
  });

  it(':text is a case- and accent-insensitive prefix on display/text', async () => {
    expect(await sorted('Observation', 'code:text=blood')).toEqual(['o-bp']);
    expect(await sorted('Observation', 'code:text=BODY')).toEqual(['o-temp', 'o-weight']);
    expect(await sorted('Patient', 'identifier:text=medical')).toEqual(['p1']);
  });

  it(':of-type matches identifier type and value', async () => {
    expect(await sorted('Patient', 'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-1')).toEqual(['p1']);
    expect(await sorted('Patient', 'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|MRN-2')).toEqual([]);
  });

  it(':missing works on tokens', async () => {
    expect(await sorted('Patient', 'gender:missing=true')).toEqual(['p4']);
    expect(await sorted('Patient', 'gender:missing=false')).toEqual(['p1', 'p2', 'p3']);
  });
});
