import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/store/db.js';
import type { SearchPage } from '../../../src/fhir/search/types.js';
import { openTestDb } from '../../support/test-db.js';
import { all } from './fixtures.js';
import { insertResources, search } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, all);
});
afterAll(async () => cleanup());

const split = (page: SearchPage) => ({
  match: page.entries.filter((e) => e.mode === 'match').map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort(),
  include: page.entries.filter((e) => e.mode === 'include').map((e) => `${e.resource.resourceType}/${e.resource.id}`).sort(),
});

describe('_include', () => {
  it('includes the targets of a reference parameter', async () => {
    const r = split(await search(db, 'Observation', 'code=http://loinc.org|8310-5&_include=Observation:subject'));
    expect(r).toEqual({ match: ['Observation/o-temp'], include: ['Patient/p1'] });
  });

  it('restricts by target type and deduplicates', async () => {
    const r = split(await search(db, 'Observation', 'subject=Patient/p1&_include=Observation:subject:Patient&_include=Observation:performer'));
    expect(r).toEqual({ match: ['Observation/o-bp', 'Observation/o-temp'], include: ['Patient/p1', 'Practitioner/dr1'] });
    const none = split(await search(db, 'Observation', 'subject=Patient/p1&_include=Observation:subject:Group'));
    expect(none.include).toEqual([]);
  });

  it('* includes every reference parameter; versioned references resolve to the current resource', async () => {
    const r = split(await search(db, 'Patient', '_id=p1,p3&_include=*'));
    expect(r.include).toEqual(['Organization/o1', 'Practitioner/dr1']);
  });

  it(':iterate follows references of included resources', async () => {
    const once = split(await search(db, 'Observation', '_id=o-temp&_include=Observation:subject&_include=Patient:organization'));
    expect(once.include).toEqual(['Patient/p1']);
    const iter = split(await search(db, 'Observation', '_id=o-temp&_include=Observation:subject&_include:iterate=Patient:organization'));
    expect(iter.include).toEqual(['Organization/o1', 'Patient/p1']);
  });
});

describe('_revinclude', () => {
  it('includes resources that reference the matches', async () => {
    const r = split(await search(db, 'Patient', '_id=p1&_revinclude=Observation:subject'));
    expect(r).toEqual({ match: ['Patient/p1'], include: ['Observation/o-bp', 'Observation/o-temp'] });
  });

  it('combines with _include and :iterate', async () => {
    const r = split(await search(db, 'Organization', '_id=o1&_revinclude=Patient:organization&_revinclude:iterate=Observation:patient'));
    expect(r.include).toEqual(['Observation/o-bp', 'Observation/o-range', 'Observation/o-temp', 'Patient/p1', 'Patient/p3']);
    const self = split(await search(db, 'Organization', '_id=o1&_revinclude=Organization:partof'));
    expect(self.include).toEqual(['Organization/o2']);
  });
});
