import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import type { Db } from '../../../src/store/db.js';
import { matchesSearch } from '../../../src/fhir/search/match.js';
import { openTestDb } from '../../support/test-db.js';
import { all } from './fixtures.js';
import { ids, insertResources, parse } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, all);
});
afterAll(async () => cleanup());

const sorted = async (type: string, q: string) => (await ids(db, type, q)).sort();
const byRef = new Map(all.map((r) => [`${r.resourceType}/${r.id}`, r]));

describe('chained parameters', () => {
  it('subject:Patient.name and patient.identifier', async () => {
    expect(await sorted('Observation', 'subject:Patient.name=peter')).toEqual(['o-bp', 'o-range', 'o-temp']);
    expect(await sorted('Observation', 'subject:Patient.family=chalmers')).toEqual(['o-bp', 'o-temp']);
    expect(await sorted('Observation', 'patient.identifier=http://hospital/mrn|MRN-2')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'subject:Patient.gender=female,other')).toEqual(['o-range', 'o-weight']);
  });

  it('without a type, searches every target that defines the parameter', async () => {
    expect(await sorted('Patient', 'organization.name=acme')).toEqual(['p1', 'p3']);
    expect(await sorted('Observation', 'performer.family=house')).toEqual(['o-temp']);
    expect(await sorted('Observation', 'subject.name=peter')).toEqual(['o-bp', 'o-range', 'o-temp']);
  });

  it('AND-s with other filters and supports modifiers on the chained parameter', async () => {
    expect(await sorted('Observation', 'subject:Patient.family:exact=Chalmers&status=preliminary')).toEqual(['o-temp']);
    expect(await sorted('Observation', 'subject:Patient.birthdate=lt1990')).toEqual(['o-bp', 'o-temp']);
  });

  it('rejects invalid chains', async () => {
    expect(() => parse('Observation', 'subject:Patient.name.family=x')).toThrow(/one level/);
    expect(() => parse('Observation', 'status.name=x')).toThrow(/only reference parameters/);
    expect(() => parse('Observation', 'subject:Patient.nonsense=x')).toThrow(/CLARION|no target/);
    expect(() => parse('Observation', 'subject:Medication.code=x')).toThrow();
  });

  it('matches in memory with a resolver, and refuses without one', () => {
    const s = parse('Observation', 'subject:Patient.name=peter');
    const resolve = (ref: string): Resource | undefined => byRef.get(ref);
    const matched = all.filter((r) => r.resourceType === 'Observation' && matchesSearch(r, s, { resolve })).map((r) => r.id);
    expect(matched.sort()).toEqual(['o-bp', 'o-range', 'o-temp']);
    expect(() => matchesSearch(byRef.get('Observation/o-bp')!, s)).toThrow(/resolver/);
  });
});
