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

describe('string search', () => {
  it('is a case-insensitive prefix match by default', async () => {
    expect(await sorted('Patient', 'family=chal')).toEqual(['p1']);
    expect(await sorted('Patient', 'name=PETER')).toEqual(['p1', 'p3']);
    expect(await sorted('Patient', 'name=pete')).toEqual(['p1', 'p3', 'p4']);
    expect(await sorted('Patient', 'given=jam')).toEqual(['p1']);
  });

  it('is accent-insensitive both ways', async () => {
    expect(await sorted('Patient', 'family=munoz')).toEqual(['p2']);
    expect(await sorted('Patient', 'given=zoe')).toEqual(['p2']);
    expect(await sorted('Patient', 'given=ZOË')).toEqual(['p2']);
  });

  it('indexes every HumanName and Address part', async () => {
    expect(await sorted('Patient', 'name=mr')).toEqual(['p1']);
    expect(await sorted('Patient', 'name=zoë muñoz')).toEqual(['p2']);
    expect(await sorted('Patient', 'address=1 main')).toEqual(['p1']);
    expect(await sorted('Patient', 'address=shelby')).toEqual(['p2']);
    expect(await sorted('Patient', 'address-city=springfield')).toEqual(['p1']);
    expect(await sorted('Patient', 'address-postalcode=123')).toEqual(['p1']);
  });

  it(':exact is case- and accent-sensitive and whole-value', async () => {
    expect(await sorted('Patient', 'family:exact=Chalmers')).toEqual(['p1']);
    expect(await sorted('Patient', 'family:exact=chalmers')).toEqual([]);
    expect(await sorted('Patient', 'family:exact=Chal')).toEqual([]);
    expect(await sorted('Patient', 'family:exact=Muñoz')).toEqual(['p2']);
    expect(await sorted('Patient', 'family:exact=Munoz')).toEqual([]);
  });

  it(':contains matches anywhere', async () => {
    expect(await sorted('Patient', 'family:contains=ERS')).toEqual(['p1', 'p3']);
    expect(await sorted('Patient', 'name:contains=der')).toEqual(['p4']);
  });

  it('ORs comma-separated values and handles escaped commas', async () => {
    expect(await sorted('Patient', 'family=chalmers,peterson')).toEqual(['p1', 'p3']);
    expect(await sorted('Organization', 'name=acme')).toEqual(['o1']);
    expect(await sorted('Observation', 'value-string=patient feels')).toEqual(['o-note']);
  });

  it(':missing on strings', async () => {
    expect(await sorted('Patient', 'address:missing=true')).toEqual(['p3', 'p4']);
  });

  // Regression (R4 examples: CodeSystem-v3-hl7PublishingDomain's description is "  Description:\r\n…").
  it('ignores leading/trailing whitespace and treats runs of whitespace as one space', async () => {
    await insertResources(db, [
      { resourceType: 'CodeSystem', id: 'cs-ws', status: 'active', content: 'complete', description: '  Description:\r\nCodes for  HL7\tdomains ' },
    ]);
    expect(await sorted('CodeSystem', 'description=description')).toEqual(['cs-ws']);
    expect(await sorted('CodeSystem', 'description=description: codes for hl7 domains')).toEqual(['cs-ws']);
    expect(await sorted('CodeSystem', 'description=  Description:%0D%0ACodes')).toEqual(['cs-ws']);
    expect(await sorted('CodeSystem', 'description:contains=for hl7 domains')).toEqual(['cs-ws']);
    expect(await sorted('CodeSystem', 'description:exact=description')).toEqual([]);
    expect(await sorted('CodeSystem', 'description=codes')).toEqual([]);
  });

  it('rejects a value that is only whitespace (it would match every value)', async () => {
    await expect(ids(db, 'Patient', 'family=%20%20', { strict: true })).rejects.toMatchObject({ code: 'CLARION_INVALID_SEARCH_VALUE' });
    await expect(ids(db, 'Patient', 'family:exact=%20', { strict: true })).resolves.toEqual([]);
  });
});
