/**
 * In-memory matching (matchesSearch) and SQL (executeSearch) must agree: generated queries over every
 * search parameter of a few hundred R4 examples, with values taken from the examples themselves.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import type { Db } from '../../../src/store/db.js';
import { extractSearchIndex } from '../../../src/fhir/search/extract.js';
import { matchesSearch } from '../../../src/fhir/search/match.js';
import { searchParamsFor } from '../../../src/fhir/search/params.js';
import type { ParamData } from '../../../src/fhir/search/index-values.js';
import { executeSearch } from '../../../src/store/search-sql.js';
import { openTestDb } from '../../support/test-db.js';
import { insertResources, loadExamples, parse } from './search-helpers.js';

const TYPES = ['Patient', 'Observation', 'Condition', 'Encounter', 'MedicationRequest', 'Practitioner', 'Organization', 'Procedure', 'DiagnosticReport', 'AllergyIntolerance', 'Immunization', 'CarePlan', 'Questionnaire', 'RiskAssessment', 'Group'];

let db: Db;
let cleanup: () => Promise<void>;
let stored: Resource[] = [];
const byRef = new Map<string, Resource>();

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  let valueSets = 0;
  const seen = new Set<string>();
  const examples = loadExamples((f) => TYPES.some((t) => f.startsWith(`${t}-`)) || (f.startsWith('ValueSet-') && valueSets++ < 40)).filter((r) => {
    const k = `${r.resourceType}/${r.id}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
  await insertResources(db, examples);
  const rows = await db.query<{ content: string }>('SELECT content FROM resources');
  stored = rows.rows.map((r) => JSON.parse(r.content) as Resource);
  for (const r of stored) byRef.set(`${r.resourceType}/${r.id}`, r);
}, 300_000);
afterAll(async () => cleanup());

const q = (s: string) => s.replace(/\\/g, '\\\\').replace(/([,$|])/g, '\\$1');
const day = (ms: number) => new Date(ms).toISOString().slice(0, 10);
const PREFIXES = ['', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb'];

/** Queries for one parameter from the index of one resource. */
function queriesFor(code: string, type: string, targets: string[], d: ParamData, tokens: string[], i: number): string[] {
  const out: string[] = [`${code}:missing=${i % 2 === 0}`];
  const p = PREFIXES[i % PREFIXES.length];
  const enc = encodeURIComponent;
  switch (type) {
    case 'token': {
      const keys = tokens.filter((t) => t.startsWith(`${code}=`) || t.startsWith(`${code}@`)).map((t) => t.slice(code.length));
      for (const k of keys.slice(0, 3)) {
        if (k.includes('\\')) continue;
        const v = k.startsWith('@') ? `${q(k.slice(1))}|` : k.slice(1).split('|').map(q).join('|');
        out.push(`${code}=${enc(v)}`, `${code}:not=${enc(v)}`);
      }
      if (d.t?.[0]) out.push(`${code}:text=${enc(q(d.t[0].slice(0, 4)))}`);
      break;
    }
    case 'string':
      if (d.n?.[0]) out.push(`${code}=${enc(q(d.n[0].slice(0, 3)))}`, `${code}:contains=${enc(q(d.n[0].slice(1, 4)))}`);
      if (d.e?.[0]) out.push(`${code}:exact=${enc(q(d.e[0]))}`);
      break;
    case 'reference':
      for (const r of (d.r ?? []).slice(0, 2)) {
        out.push(`${code}=${enc(q(r))}`);
        const m = /^([A-Za-z]+)\/([^/]+)$/.exec(r);
        if (m && targets.includes(m[1])) out.push(`${code}=${enc(q(m[2]))}`, `${code}:${m[1]}=${enc(q(m[2]))}`);
      }
      break;
    case 'uri':
      if (d.u?.[0]) out.push(`${code}=${enc(q(d.u[0]))}`, `${code}:below=${enc(q(d.u[0].slice(0, -3)))}`, `${code}:above=${enc(q(d.u[0] + '/x'))}`);
      break;
    case 'date':
      for (const [lo, hi] of (d.d ?? []).slice(0, 2)) {
        if (Math.abs(lo) < 1e15) out.push(`${code}=${p}${day(lo)}`, `${code}=${PREFIXES[(i + 3) % 8]}${day(lo).slice(0, 4)}`);
        if (Math.abs(hi) < 1e15) out.push(`${code}=${p}${new Date(hi).toISOString()}`);
      }
      break;
    case 'number':
      for (const [lo] of (d.v ?? []).slice(0, 1)) if (Math.abs(lo) < 1e15) out.push(`${code}=${p}${lo}`, `${code}=ap${lo}`);
      break;
    case 'quantity':
      for (const [lo, , sys, c] of (d.q ?? []).slice(0, 1)) {
        if (Math.abs(lo) >= 1e15) continue;
        out.push(`${code}=${p}${lo}`);
        if (sys && c) out.push(`${code}=${enc(`${p}${lo}|${q(sys)}|${q(c)}`)}`, `${code}=${enc(`${lo}||${q(c)}`)}`);
      }
      break;
    default:
      break;
  }
  return out;
}

function generate(): { type: string; query: string }[] {
  const out: { type: string; query: string }[] = [];
  const byType = new Map<string, Resource[]>();
  for (const r of stored) byType.set(r.resourceType, [...(byType.get(r.resourceType) ?? []), r]);
  for (const [type, list] of byType) {
    let i = 0;
    for (const def of searchParamsFor(type).values()) {
      if (!def.expression || def.type === 'composite' || def.type === 'special') continue;
      // a sample resource that has the parameter (rotate through them)
      const withValue = list.map((r) => ({ r, ix: extractSearchIndex(r) })).filter((x) => def.code in x.ix.idx);
      const sample = withValue[i % Math.max(1, withValue.length)];
      if (!sample) {
        out.push({ type, query: `${def.code}:missing=true` });
        continue;
      }
      for (const query of queriesFor(def.code, def.type, def.targets, sample.ix.idx[def.code] as ParamData, sample.ix.tokens, i++)) out.push({ type, query });
    }
  }
  out.push(
    { type: 'Observation', query: 'subject:Patient.name=pet' },
    { type: 'Observation', query: 'patient.gender=male' },
    { type: 'Observation', query: 'code-value-quantity=http://loinc.org|29463-7$gt70' },
    { type: 'Observation', query: 'component-code-value-quantity=http://loinc.org|8480-6$lt130' },
    { type: 'Observation', query: 'combo-code-value-quantity=8480-6$ge100||mm[Hg]' },
    { type: 'Encounter', query: 'subject.name=pet&status=finished' },
    { type: 'MedicationRequest', query: 'subject:Patient.birthdate=gt1970&status=active,completed' },
  );
  return out;
}

describe('matchesSearch agrees with executeSearch', () => {
  it('on generated queries over every parameter of the loaded examples', async () => {
    const queries = generate();
    expect(queries.length).toBeGreaterThan(800);
    const now = Date.now();
    const resolve = (ref: string) => byRef.get(ref);
    let nonEmpty = 0;
    const mismatches: string[] = [];
    for (const { type, query } of queries) {
      const s = parse(type, query, { maxCount: 1000, defaultCount: 1000 });
      const sql = (await executeSearch(db, s)).entries.map((e) => e.resource.id!).sort();
      const mem = stored.filter((r) => r.resourceType === type && matchesSearch(r, s, { resolve, now })).map((r) => r.id!).sort();
      if (JSON.stringify(sql) !== JSON.stringify(mem)) mismatches.push(`${type}?${query}: sql=${sql.join(',')} memory=${mem.join(',')}`);
      if (sql.length > 0) nonEmpty++;
    }
    expect(mismatches).toEqual([]);
    expect(nonEmpty).toBeGreaterThan(queries.length / 2);
  }, 600_000);
});
