import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.js';
import { FhirError } from '../../src/fhir/errors.js';
import { countMatches, executeSearch, findMatchingIds, searchWhere } from '../../src/store/search-sql.js';
import { SqlParams } from '../../src/fhir/search/sql-where.js';
import { parseSearchRequest } from '../../src/fhir/search/parse.js';
import { openTestDb } from '../support/test-db.js';
import { all } from '../fhir/search/fixtures.js';
import { insertResources, pairs, parse } from '../fhir/search/search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, all);
  await db.query(`UPDATE resources SET deleted = true WHERE resource_type = 'Patient' AND id = 'p4'`);
});
afterAll(async () => cleanup());

describe('search SQL', () => {
  it('never returns deleted resources', async () => {
    expect(await countMatches(db, parse('Patient', ''))).toBe(3);
    expect(await findMatchingIds(db, parse('Patient', 'name=pete'), 10)).toEqual(['p1', 'p3']);
  });

  it('findMatchingIds honours the limit (conditional interactions ask for 2)', async () => {
    expect(await findMatchingIds(db, parse('Observation', 'status=final'), 2)).toHaveLength(2);
    expect(await findMatchingIds(db, parse('Observation', 'code=http://loinc.org|8310-5'), 2)).toEqual(['o-temp']);
    expect(await findMatchingIds(db, parse('Observation', 'code=nothing'), 2)).toEqual([]);
  });

  it('binds every user value (no interpolation)', () => {
    const p = new SqlParams();
    const nasty = "x'); DROP TABLE resources; --";
    const sql = searchWhere(parse('Patient', `name=${encodeURIComponent(nasty)}&identifier=${encodeURIComponent(nasty)}&birthdate=gt2020`), p);
    expect(sql).not.toContain('DROP');
    expect(p.values).toEqual(expect.arrayContaining([nasty.toLowerCase()]));
  });

  it('uses the GIN index on tokens for exact matches', async () => {
    // enough rows of the type for the planner to prefer the selective GIN index
    await db.query(`INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, idx, tokens)
      SELECT 'Observation', 'gen-' || g, 1, now(), false, '{"resourceType":"Observation"}', '{}', ARRAY['code=c' || g, 'status=final']
      FROM generate_series(1, 3000) g`);
    await db.query('ANALYZE resources');
    try {
      const p = new SqlParams();
      const where = searchWhere(parse('Observation', 'code=http://loinc.org|8310-5,http://loinc.org|29463-7&subject=Patient/p1'), p);
      const plan = await db.transaction(async (tx) => {
        await tx.query('SET LOCAL enable_seqscan = off'); // tiny tables: make the planner show its index choice
        const r = await tx.query<Record<string, string>>(`EXPLAIN SELECT r.id FROM resources r WHERE ${where}`, p.values);
        return r.rows.map((x) => Object.values(x)[0]).join('\n');
      });
      expect(plan).toMatch(/resources_tokens_gin/);
    } finally {
      await db.query(`DELETE FROM resources WHERE id LIKE 'gen-%'`);
    }
  });

  it('finds token keys still in the GIN pending list and after it is merged (migration 9)', async () => {
    const { rows } = await db.query<{ reloptions: string[] }>("SELECT reloptions FROM pg_class WHERE relname = 'resources_tokens_gin'");
    expect(rows[0].reloptions).toEqual(expect.arrayContaining(['fastupdate=on', 'gin_pending_list_limit=128']));
    const insert = (from: number, to: number) =>
      db.query(`INSERT INTO resources (resource_type, id, version_id, last_updated, deleted, content, idx, tokens)
        SELECT 'Observation', 'pend-' || g, 1, now(), false, '{"resourceType":"Observation"}', '{}', ARRAY['code=pend' || g, 'status=pending-test']
        FROM generate_series(${from}, ${to}) g`);
    // Through the index only, as a large table would be searched.
    const ids = (query: string) =>
      db.transaction(async (tx) => {
        await tx.query('SET LOCAL enable_seqscan = off');
        return (await findMatchingIds(tx, parse('Observation', query), 100)).sort();
      });
    try {
      await insert(1, 3);
      expect(await ids('code=pend2')).toEqual(['pend-2']);
      await db.query("SELECT gin_clean_pending_list('resources_tokens_gin'::regclass)");
      await insert(4, 5);
      expect(await ids('code=pend2,pend5')).toEqual(['pend-2', 'pend-5']);
      expect(await ids('status=pending-test')).toEqual(['pend-1', 'pend-2', 'pend-3', 'pend-4', 'pend-5']);
    } finally {
      await db.query(`DELETE FROM resources WHERE id LIKE 'pend-%'`);
    }
  });

  it('answers odd but valid values without server errors', async () => {
    const queries = [
      "name=%27%22%5C%25_",
      'name:contains=%25',
      'family:exact=%5C%5C',
      'identifier=%7C%5C%7C',
      'birthdate=ap1900',
      'birthdate=gt9999-12-31T23:59:59.999Z',
      'general-practitioner=http://x/y%7C1',
      '_id=%20',
      '_lastUpdated=le0001',
      'organization.name=%25',
    ];
    for (const q of queries) {
      const page = await executeSearch(db, parseSearchRequest('Patient', pairs(q), { strict: true }));
      expect(Array.isArray(page.entries)).toBe(true);
    }
    expect(() => parseSearchRequest('Patient', [['name', 'a\u0000b']], { strict: false })).toThrow(FhirError);
  });
});
