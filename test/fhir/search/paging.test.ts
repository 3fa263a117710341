import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import type { Db } from '../../../src/store/db.js';
import { FhirError } from '../../../src/fhir/errors.js';
import { executeSearch } from '../../../src/store/search-sql.js';
import { openTestDb } from '../../support/test-db.js';
import { insertResources, parse } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

const FAMILIES = ['Adams', 'baker', 'Clark', 'davis', 'Evans'];

function patient(i: number): Resource {
  return {
    resourceType: 'Patient',
    id: `pt-${String(i).padStart(2, '0')}`,
    // several patients share a lastUpdated and a family: the id breaks ties
    meta: { lastUpdated: new Date(Date.UTC(2024, 0, 1 + (i % 7))).toISOString() },
    ...(i % 6 === 5 ? {} : { name: [{ family: FAMILIES[i % 5] }] }),
    birthDate: `${1950 + (i % 9)}-01-0${1 + (i % 3)}`,
  } as Resource;
}

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, Array.from({ length: 25 }, (_, i) => patient(i)));
});
afterAll(async () => cleanup());

async function walk(query: string, dir: 'next' | 'prev' = 'next', start?: string): Promise<string[][]> {
  const pages: string[][] = [];
  let cursor = start;
  for (let n = 0; n < 50; n++) {
    const s = parse('Patient', query);
    if (cursor) s.cursor = cursor;
    const page = await executeSearch(db, s);
    pages.push(page.entries.map((e) => e.resource.id!));
    cursor = dir === 'next' ? page.nextCursor : page.prevCursor;
    if (!cursor) break;
  }
  return pages;
}

describe('sorting', () => {
  it('defaults to _lastUpdated then id', async () => {
    const page = await executeSearch(db, parse('Patient', '_count=100'));
    const got = page.entries.map((e) => e.resource);
    const expected = [...got].sort((a, b) => a.meta!.lastUpdated!.localeCompare(b.meta!.lastUpdated!) || (a.id! < b.id! ? -1 : 1));
    expect(got.map((r) => r.id)).toEqual(expected.map((r) => r.id));
  });

  it('sorts by string ascending and descending, missing values last', async () => {
    const asc = (await executeSearch(db, parse('Patient', '_sort=family,_id&_count=100'))).entries.map((e) => e.resource);
    const fam = (r: Resource) => (r as { name?: { family: string }[] }).name?.[0].family.toLowerCase();
    const fams = asc.map(fam);
    const present = fams.filter((f) => f !== undefined);
    expect(present).toEqual([...present].sort());
    expect(fams.slice(present.length).every((f) => f === undefined)).toBe(true);
    const desc = (await executeSearch(db, parse('Patient', '_sort=-family&_count=100'))).entries.map((e) => e.resource);
    const dfams = desc.map(fam).filter((f) => f !== undefined);
    expect(dfams).toEqual([...dfams].sort().reverse());
    expect(fam(desc[desc.length - 1])).toBeUndefined();
  });

  it('sorts by _id descending and by date then _lastUpdated', async () => {
    const byId = (await executeSearch(db, parse('Patient', '_sort=-_id&_count=100'))).entries.map((e) => e.resource.id!);
    expect(byId).toEqual([...byId].sort().reverse());
    const byDate = (await executeSearch(db, parse('Patient', '_sort=birthdate,-_lastUpdated&_count=100'))).entries.map((e) => e.resource);
    const keys = byDate.map((r) => (r as unknown as { birthDate: string }).birthDate);
    expect(keys).toEqual([...keys].sort());
  });
});

describe('keyset paging', () => {
  for (const query of ['_count=7', '_count=4&_sort=family', '_count=5&_sort=-birthdate,family', '_count=3&_sort=-_lastUpdated']) {
    it(`visits every match exactly once, forwards and backwards (${query})`, async () => {
      const all = (await executeSearch(db, parse('Patient', query.replace(/_count=\d+/, '_count=100')))).entries.map((e) => e.resource.id!);
      const pages = await walk(query);
      expect(pages.flat()).toEqual(all);
      // walk back from the last page
      const s = parse('Patient', query);
      let cursor: string | undefined;
      for (let i = 0; i < pages.length - 1; i++) {
        const p = await executeSearch(db, { ...s, ...(cursor ? { cursor } : {}) });
        cursor = p.nextCursor;
      }
      const back = await walk(query, 'prev', (await executeSearch(db, { ...s, ...(cursor ? { cursor } : {}) })).prevCursor);
      expect([...back].reverse().flat()).toEqual(pages.slice(0, -1).flat());
    });
  }

  it('is stable under concurrent writes (no duplicates or skips of unchanged resources)', async () => {
    const s = parse('Patient', '_count=6&_sort=_id');
    const before = (await executeSearch(db, { ...s, count: 100 })).entries.map((e) => e.resource.id!);
    const seen: string[] = [];
    let page = await executeSearch(db, s);
    seen.push(...page.entries.map((e) => e.resource.id!));
    // insert resources before and after the cursor, delete one already seen and one not yet seen
    await insertResources(db, [patient(100), { resourceType: 'Patient', id: 'aaa-new' }, { resourceType: 'Patient', id: 'zzz-new' }]);
    await db.query(`UPDATE resources SET deleted = true WHERE resource_type = 'Patient' AND id IN ('pt-00', 'pt-20')`);
    while (page.nextCursor) {
      page = await executeSearch(db, { ...s, cursor: page.nextCursor });
      seen.push(...page.entries.map((e) => e.resource.id!));
    }
    expect(new Set(seen).size).toBe(seen.length);
    for (const id of before) if (id !== 'pt-20') expect(seen).toContain(id);
    expect(seen).toContain('zzz-new');
    expect(seen).not.toContain('aaa-new');
    await db.query(`DELETE FROM resources WHERE id IN ('pt-100', 'aaa-new', 'zzz-new')`);
    await db.query(`UPDATE resources SET deleted = false WHERE id IN ('pt-00', 'pt-20')`);
  });
});

describe('totals and cursor validation', () => {
  it('computes the total when asked or when the first page is complete', async () => {
    expect((await executeSearch(db, parse('Patient', '_count=5'))).total).toBeUndefined();
    expect((await executeSearch(db, parse('Patient', '_count=5&_total=accurate'))).total).toBe(25);
    expect((await executeSearch(db, parse('Patient', '_count=100'))).total).toBe(25);
    expect((await executeSearch(db, parse('Patient', 'family=adams&_count=3&_total=estimate'))).total).toBe(4);
    const counted = await executeSearch(db, parse('Patient', '_summary=count'));
    expect(counted.total).toBe(25);
    const zero = await executeSearch(db, parse('Patient', '_count=0'));
    expect(zero.entries).toEqual([]);
    expect(zero.total).toBe(25);
  });

  it('rejects tampered cursors and cursors of another search', async () => {
    const page = await executeSearch(db, parse('Patient', '_count=5'));
    const cursor = page.nextCursor!;
    const decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as { b: { i: string } };
    decoded.b.i = 'pt-99';
    const tampered = Buffer.from(JSON.stringify(decoded)).toString('base64url');
    for (const bad of [tampered, 'garbage', cursor.slice(0, -3), '']) {
      await expect(executeSearch(db, { ...parse('Patient', '_count=5'), cursor: bad })).rejects.toMatchObject({ code: 'CLARION_INVALID_CURSOR', status: 400 });
    }
    await expect(executeSearch(db, { ...parse('Patient', '_count=5&family=a'), cursor })).rejects.toBeInstanceOf(FhirError);
    await expect(executeSearch(db, { ...parse('Patient', '_count=5&_sort=family'), cursor })).rejects.toMatchObject({ code: 'CLARION_INVALID_CURSOR' });
    // the same search with another page size keeps working
    expect((await executeSearch(db, { ...parse('Patient', '_count=10'), cursor })).entries.length).toBe(10);
  });
});
