/**
 * Loads the published R4 examples (npm package hl7.fhir.r4.examples@4.0.1) into a running Clarion
 * server through the REST API and checks each one: `PUT [type]/[id]` with the example's own id,
 * read back (`GET [type]/[id]`, identical apart from meta.versionId/lastUpdated), found by `_id` and
 * by one other search parameter built from the example's own data. Shared by
 * test/server/r4-examples.test.ts and scripts/load-r4-examples.ts.
 *
 * Search values are built from the FHIRPath results of each parameter's expression, evaluated by
 * fhirpath.js (`evaluateFhirPath`, the reference evaluator — not the server's index extraction), so a
 * value the index misses is a failure and not a silently skipped parameter.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Resource } from 'fhir/r4.js';
import { searchParamsFor, type SearchParamDef } from '../../src/fhir/search/params.js';
import { evaluateFhirPath, type TypedValue } from '../../src/fhir/search/fhirpath-eval.js';

const require = createRequire(import.meta.url);
export const EXAMPLES_DIR = dirname(require.resolve('hl7.fhir.r4.examples/package.json'));

/** The example files (package.json excluded), sorted. */
export function exampleFiles(): string[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.json') && f !== 'package.json')
    .sort();
}

/**
 * Published R4 examples that really break an R4 rule, with the expression of the (first) issue we
 * report. Anything else rejected is a bug (validator or REST layer).
 */
export const KNOWN_INVALID: Readonly<Record<string, string>> = {
  // txt-2: the narrative is only whitespace
  'ActivityDefinition-blood-tubes-supply.json': 'ActivityDefinition.text.div',
  'ActivityDefinition-heart-valve-replacement.json': 'ActivityDefinition.text.div',
  'EventDefinition-example.json': 'EventDefinition.text.div',
  'Questionnaire-zika-virus-exposure-assessment.json': 'Questionnaire.text.div',
  // bdl-7: duplicate fullUrls in a collection Bundle
  'Bundle-dataelements.json': 'Bundle',
  // code values with a trailing no-break space, and a blank code
  'Bundle-v2-valuesets.json': 'Bundle.entry[814].resource.concept[74].code',
  'CodeSystem-v2-0550.json': 'CodeSystem.concept[74].code',
  // ImplementationGuide.name and .status are 1..1
  'ImplementationGuide-fhir.json': 'ImplementationGuide.name',
  'ig-r4.json': 'ImplementationGuide.name',
  // Questionnaire.item.linkId is 1..1
  'Questionnaire-qs1.json': 'Questionnaire.item[0].item[0].linkId',
  // SearchParameter.base is 1..*
  'SearchParameter-codesystem-extensions-CodeSystem-author.json': 'SearchParameter.base',
  'SearchParameter-codesystem-extensions-CodeSystem-effective.json': 'SearchParameter.base',
  'SearchParameter-codesystem-extensions-CodeSystem-end.json': 'SearchParameter.base',
  'SearchParameter-codesystem-extensions-CodeSystem-keyword.json': 'SearchParameter.base',
  'SearchParameter-codesystem-extensions-CodeSystem-workflow.json': 'SearchParameter.base',
  'SearchParameter-valueset-extensions-ValueSet-author.json': 'SearchParameter.base',
  'SearchParameter-valueset-extensions-ValueSet-effective.json': 'SearchParameter.base',
  'SearchParameter-valueset-extensions-ValueSet-end.json': 'SearchParameter.base',
  'SearchParameter-valueset-extensions-ValueSet-keyword.json': 'SearchParameter.base',
  'SearchParameter-valueset-extensions-ValueSet-workflow.json': 'SearchParameter.base',
  // the id has 67 characters (max 64)
  'SearchParameter-questionnaireresponse-extensions-QuestionnaireResponse-item-subject.json': 'SearchParameter.id',
  // sdf-4: logical models that are not abstract and have no baseDefinition
  'StructureDefinition-Definition.json': 'StructureDefinition',
  'StructureDefinition-Event.json': 'StructureDefinition',
  'StructureDefinition-FiveWs.json': 'StructureDefinition',
  'StructureDefinition-Request.json': 'StructureDefinition',
};

/**
 * Valid R4 examples that Clarion refuses by design, with the expression of the first issue: it
 * supports topic-based Subscriptions only (criteria = a SubscriptionTopic canonical), and these are
 * R4 query-based ones (`criteria: "Observation?code=…"`).
 */
export const REJECTED_BY_DESIGN: Readonly<Record<string, string>> = {
  'Subscription-example-error.json': 'Subscription.criteria',
  'Subscription-example.json': 'Subscription.criteria',
};

/** Every example the REST API rejects, with the expression of the first issue. */
export const EXPECTED_REJECTIONS: Readonly<Record<string, string>> = { ...KNOWN_INVALID, ...REJECTED_BY_DESIGN };

// ---------------------------------------------------------------------------------------------------
// search values from an example's own data

/** A search that must find the resource: `[type]?_id=[id]&` + `query`. */
export interface SearchProbe {
  code: string;
  type: string;
  /** Query string parts (`name=value`, already URL-encoded), AND-ed. */
  query: string[];
}

/** Parameters that apply to every type; `_lastUpdated` is set by the server, so it proves nothing. */
const COMMON = new Set(['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']);

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() !== '' ? v : undefined);

/** FHIR search escaping of `\ , $ |` in a value. */
export function escapeSearchValue(v: string): string {
  return v.replace(/[\\,$|]/g, (c) => `\\${c}`);
}

function param(code: string, value: string, modifier?: string): string {
  return `${encodeURIComponent(modifier ? `${code}:${modifier}` : code)}=${encodeURIComponent(value)}`;
}

/** The first characters (code points) of a string, for a prefix search. */
function prefix(s: string, n = 12): string {
  return Array.from(s.trim()).slice(0, n).join('');
}

function numberText(v: unknown): string | undefined {
  if (typeof v !== 'number' || !Number.isFinite(v)) return undefined;
  const t = String(v);
  return /e/i.test(t) ? undefined : t;
}

function tokenQuery(code: string, v: TypedValue): string[] | undefined {
  const x = v.data;
  if (typeof x === 'boolean' || typeof x === 'number') return [param(code, String(x))];
  if (typeof x === 'string') return str(x) ? [param(code, escapeSearchValue(x))] : undefined;
  if (!isObj(x)) return undefined;
  const sysCode = (system: unknown, value: unknown): string[] | undefined => {
    const c = str(value);
    if (!c) return undefined;
    const s = str(system);
    return [param(code, s ? `${escapeSearchValue(s)}|${escapeSearchValue(c)}` : escapeSearchValue(c))];
  };
  if (v.type === 'Identifier' || v.type === 'ContactPoint') return sysCode(x.system, x.value);
  if (Array.isArray(x.coding) || 'text' in x) {
    for (const c of (x.coding as unknown[] | undefined) ?? []) {
      if (isObj(c)) {
        const q = sysCode(c.system, c.code);
        if (q) return q;
      }
    }
    const text = str(x.text);
    return text ? [param(code, escapeSearchValue(prefix(text)), 'text')] : undefined;
  }
  if ('code' in x) return sysCode(x.system, x.code);
  if ('value' in x) return sysCode(x.system, x.value);
  return undefined;
}

function referenceQuery(code: string, v: TypedValue): string[] | undefined {
  const x = v.data;
  if (typeof x === 'string') return str(x) ? [param(code, escapeSearchValue(x))] : undefined;
  if (!isObj(x)) return undefined;
  const ref = str(x.reference);
  if (ref) return [param(code, escapeSearchValue(ref))];
  const id = x.identifier;
  if (isObj(id) && str(id.value)) {
    const s = str(id.system);
    return [param(code, s ? `${escapeSearchValue(s)}|${escapeSearchValue(id.value as string)}` : escapeSearchValue(id.value as string), 'identifier')];
  }
  return undefined;
}

const NAME_PARTS = ['family', 'text', 'given', 'prefix', 'suffix'];
const ADDRESS_PARTS = ['city', 'line', 'text', 'postalCode', 'state', 'country', 'district'];

function stringQuery(code: string, v: TypedValue): string[] | undefined {
  const x = v.data;
  let s: string | undefined;
  if (typeof x === 'string') s = str(x);
  else if (isObj(x)) {
    for (const part of 'city' in x || 'line' in x || 'postalCode' in x || v.type === 'Address' ? ADDRESS_PARTS : NAME_PARTS) {
      const p = x[part];
      s = str(Array.isArray(p) ? p.find((e) => str(e)) : p);
      if (s) break;
    }
  }
  return s ? [param(code, escapeSearchValue(prefix(s)))] : undefined;
}

/** A FHIR date, dateTime or instant (a `string` choice alternative, e.g. scheduledString "daily", is not). */
const isDate = (s: unknown): s is string => typeof s === 'string' && /^\d{4}(-\d{2}(-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?)?)?$/.test(s);

function dateQuery(code: string, v: TypedValue): string[] | undefined {
  const x = v.data;
  if (typeof x === 'string') return isDate(x) ? [param(code, `eq${x}`)] : undefined;
  if (!isObj(x)) return undefined;
  // Period
  if (isDate(x.start)) return [param(code, `ge${x.start}`)];
  if (isDate(x.end)) return [param(code, `le${x.end}`)];
  // Timing
  const event: unknown = Array.isArray(x.event) ? x.event[0] : undefined;
  if (isDate(event)) return [param(code, `ge${event}`)];
  const bounds = isObj(x.repeat) ? x.repeat.boundsPeriod : undefined;
  if (isObj(bounds) && isDate(bounds.start)) return [param(code, `ge${bounds.start}`)];
  return undefined;
}

function numberQuery(code: string, v: TypedValue): string[] | undefined {
  const t = numberText(v.data);
  return t ? [param(code, `ge${t}`), param(code, `le${t}`)] : undefined;
}

function quantityQuery(code: string, v: TypedValue): string[] | undefined {
  const x = v.data;
  if (typeof x === 'number') return numberQuery(code, v);
  if (!isObj(x)) return undefined;
  if (isObj(x.low) || isObj(x.high)) {
    // Range
    const low = isObj(x.low) ? numberText(x.low.value) : undefined;
    if (low) return [param(code, `ge${low}`)];
    const high = isObj(x.high) ? numberText(x.high.value) : undefined;
    return high ? [param(code, `le${high}`)] : undefined;
  }
  const value = numberText(x.value);
  if (!value) return undefined;
  const system = str(x.system) ?? (str(x.currency) ? 'urn:iso:std:iso:4217' : undefined);
  const unitCode = str(x.code) ?? str(x.currency);
  const unit = system && unitCode ? `|${escapeSearchValue(system)}|${escapeSearchValue(unitCode)}` : '';
  const comparator = str(x.comparator);
  const parts: string[] = [];
  if (!comparator || comparator.startsWith('>')) parts.push(param(code, `ge${value}${unit}`));
  if (!comparator || comparator.startsWith('<')) parts.push(param(code, `le${value}${unit}`));
  return parts;
}

function uriQuery(code: string, v: TypedValue): string[] | undefined {
  return typeof v.data === 'string' && str(v.data) ? [param(code, escapeSearchValue(v.data))] : undefined;
}

const BUILDERS: Partial<Record<string, (code: string, v: TypedValue) => string[] | undefined>> = {
  token: tokenQuery,
  reference: referenceQuery,
  string: stringQuery,
  date: dateQuery,
  number: numberQuery,
  quantity: quantityQuery,
  uri: uriQuery,
};

/** A probe for one parameter from the resource's own values, if one can be built. */
export function probeFor(def: SearchParamDef, resource: Resource): SearchProbe | undefined {
  const build = BUILDERS[def.type];
  if (!build || !def.expression) return undefined;
  for (const v of evaluateFhirPath(def.expression, resource, resource)) {
    const query = build(def.code, v);
    if (query && query.length > 0) return { code: def.code, type: def.type, query };
  }
  return undefined;
}

/**
 * Probes for the resource's own parameters (composite and special excluded) that have a value;
 * when there are none, probes for `_tag`, `_profile`, `_security`, `_source`.
 */
export function probesFor(resource: Resource): SearchProbe[] {
  const own: SearchProbe[] = [];
  const common: SearchProbe[] = [];
  for (const def of searchParamsFor(resource.resourceType).values()) {
    if (def.code === '_id' || def.code === '_lastUpdated') continue;
    const p = probeFor(def, resource);
    if (p) (COMMON.has(def.code) ? common : own).push(p);
  }
  return own.length > 0 ? own : common;
}

// ---------------------------------------------------------------------------------------------------
// loading

export interface Rejection {
  file: string;
  status: number;
  /** Clarion error code (issue.details.coding[0].code) of the first issue. */
  code?: string;
  /** Expression of the first issue. */
  expression?: string;
  diagnostics?: string;
  issues: number;
}

export interface Failure {
  file: string;
  step: 'read' | 'search _id' | 'search';
  detail: string;
}

export interface LoadReport {
  files: number;
  accepted: string[];
  rejected: Rejection[];
  /** `Type/id` written by several files (later files overwrite earlier ones). */
  duplicates: { key: string; files: string[] }[];
  failures: Failure[];
  /** Accepted files with no search parameter value besides _id and _lastUpdated. */
  noSecondParam: { file: string; type: string }[];
  /** Searches run per `Type.param`. */
  paramsTested: Map<string, number>;
  /** Files whose second search used a common parameter (_tag, _profile, …) for lack of an own one. */
  commonOnly: string[];
  requests: number;
  seconds: number;
}

export interface LoadOptions {
  /** FHIR base URL (`http://127.0.0.1:8080/fhir`). */
  baseUrl: string;
  /** Requests in flight at once (default 8). */
  concurrency?: number;
  /** Extra search parameters tried per resource beyond the first (default 0). */
  extraParams?: number;
  /** Only files for which this returns true (default all). */
  filter?: (file: string) => boolean;
  onProgress?: (done: number, total: number) => void;
}

interface Group {
  key: string;
  type: string;
  id: string;
  files: string[];
}

function withoutVersionMeta(r: unknown): unknown {
  if (!isObj(r)) return r;
  const { meta, ...rest } = r;
  if (!isObj(meta)) return r;
  const { versionId: _v, lastUpdated: _l, ...m } = meta;
  return Object.keys(m).length > 0 ? { ...rest, meta: m } : rest;
}

/** The first JSON path at which two values differ (for messages). */
export function firstDifference(a: unknown, b: unknown, path = ''): string | undefined {
  if (isDeepStrictEqual(a, b)) return undefined;
  if (isObj(a) && isObj(b)) {
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
      const d = firstDifference(a[k], b[k], `${path}.${k}`);
      if (d) return d;
    }
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${path}: ${a.length} items ≠ ${b.length} items`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
  }
  const show = (v: unknown) => (JSON.stringify(v) ?? 'undefined').slice(0, 120);
  return `${path || '(root)'}: sent ${show(a)}, got ${show(b)}`;
}

/** Runs `tasks` with at most `n` in flight. */
async function pool<T>(items: T[], n: number, task: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await task(items[next++]);
    }),
  );
}

interface Http {
  status: number;
  body: any;
}

/** Loads and checks the examples; never throws for a FHIR-level failure (they are in the report). */
export async function loadR4Examples(options: LoadOptions): Promise<LoadReport> {
  const base = options.baseUrl.replace(/\/$/, '');
  const started = performance.now();
  let requests = 0;
  const http = async (method: string, path: string, body?: string): Promise<Http> => {
    requests++;
    const res = await fetch(`${base}/${path}`, {
      method,
      headers: {
        accept: 'application/fhir+json',
        prefer: 'handling=strict',
        ...(body !== undefined ? { 'content-type': 'application/fhir+json' } : {}),
      },
      body,
    });
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      parsed = undefined;
    }
    return { status: res.status, body: parsed };
  };

  const files = exampleFiles().filter(options.filter ?? (() => true));
  const groups = new Map<string, Group>();
  for (const file of files) {
    const r = JSON.parse(readFileSync(join(EXAMPLES_DIR, file), 'utf8')) as Resource;
    const key = `${r.resourceType}/${r.id}`;
    const g = groups.get(key) ?? { key, type: r.resourceType, id: r.id!, files: [] };
    g.files.push(file);
    groups.set(key, g);
  }

  const report: LoadReport = {
    files: files.length,
    accepted: [],
    rejected: [],
    duplicates: [...groups.values()].filter((g) => g.files.length > 1).map((g) => ({ key: g.key, files: g.files })),
    failures: [],
    noSecondParam: [],
    paramsTested: new Map(),
    commonOnly: [],
    requests: 0,
    seconds: 0,
  };
  let done = 0;

  const searchIds = async (path: string): Promise<{ status: number; ids: string[]; detail?: string }> => {
    const res = await http('GET', path);
    if (res.status !== 200) return { status: res.status, ids: [], detail: JSON.stringify(res.body?.issue?.[0] ?? res.body).slice(0, 300) };
    const entries = (res.body?.entry ?? []) as { resource?: Resource; search?: { mode?: string } }[];
    return { status: 200, ids: entries.filter((e) => e.search?.mode !== 'include' && e.search?.mode !== 'outcome').map((e) => `${e.resource?.resourceType}/${e.resource?.id}`) };
  };

  await pool([...groups.values()], options.concurrency ?? 8, async (g) => {
    // Files of one Type/id are written in file order by one worker: the last accepted one is stored.
    let stored: { file: string; resource: Resource } | undefined;
    for (const file of g.files) {
      const text = readFileSync(join(EXAMPLES_DIR, file), 'utf8');
      const res = await http('PUT', `${g.type}/${encodeURIComponent(g.id)}`, text);
      if (res.status === 200 || res.status === 201) {
        report.accepted.push(file);
        stored = { file, resource: JSON.parse(text) as Resource };
      } else {
        const issue = res.body?.issue?.[0];
        report.rejected.push({
          file,
          status: res.status,
          code: issue?.details?.coding?.[0]?.code,
          expression: issue?.expression?.[0],
          diagnostics: issue?.diagnostics,
          issues: res.body?.issue?.length ?? 0,
        });
      }
    }
    done += g.files.length;
    options.onProgress?.(done, files.length);
    if (!stored) return;
    const { file, resource } = stored;
    const path = `${g.type}/${encodeURIComponent(g.id)}`;

    const read = await http('GET', path);
    if (read.status !== 200) {
      report.failures.push({ file, step: 'read', detail: `status ${read.status}` });
    } else {
      const diff = firstDifference(withoutVersionMeta(resource), withoutVersionMeta(read.body));
      if (diff) report.failures.push({ file, step: 'read', detail: diff });
    }

    const idQuery = `${g.type}?_id=${encodeURIComponent(g.id)}`;
    const probes = probesFor(resource);
    if (probes.length === 0) {
      // Only `_id` can find it. (Otherwise `_id` is checked together with the other parameter below: the
      // search must find exactly this resource, so a failing `_id` fails it too.)
      const byId = await searchIds(idQuery);
      if (byId.status !== 200 || byId.ids.length !== 1 || byId.ids[0] !== g.key) {
        report.failures.push({ file, step: 'search _id', detail: `status ${byId.status}, found [${byId.ids.join(', ')}] ${byId.detail ?? ''}` });
      }
      report.noSecondParam.push({ file, type: g.type });
      return;
    }
    if (probes[0].code.startsWith('_')) report.commonOnly.push(file);
    // The least tested parameters of this type first, so the run covers as many as it can.
    const tested = (p: SearchProbe) => report.paramsTested.get(`${g.type}.${p.code}`) ?? 0;
    const chosen = [...probes].sort((a, b) => tested(a) - tested(b)).slice(0, 1 + (options.extraParams ?? 0));
    for (const p of chosen) {
      const k = `${g.type}.${p.code}`;
      report.paramsTested.set(k, (report.paramsTested.get(k) ?? 0) + 1);
      const q = `${idQuery}&${p.query.join('&')}`;
      const found = await searchIds(q);
      if (found.status !== 200 || found.ids.length !== 1 || found.ids[0] !== g.key) {
        report.failures.push({ file, step: 'search', detail: `${q} → status ${found.status}, found [${found.ids.join(', ')}] ${found.detail ?? ''}` });
      }
    }
  });

  report.accepted.sort();
  report.rejected.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));
  report.failures.sort((a, b) => a.file.localeCompare(b.file) || a.step.localeCompare(b.step));
  report.noSecondParam.sort((a, b) => a.file.localeCompare(b.file));
  report.commonOnly.sort();
  report.requests = requests;
  report.seconds = (performance.now() - started) / 1000;
  return report;
}

/** A human-readable summary of a report. */
export function formatReport(r: LoadReport): string {
  const lines: string[] = [];
  const types = new Set([...r.paramsTested.keys()].map((k) => k.split('.')[0]));
  lines.push(
    `hl7.fhir.r4.examples: ${r.files} files, accepted ${r.accepted.length}, rejected ${r.rejected.length}; ` +
      `${r.requests} requests in ${r.seconds.toFixed(1)} s (${(r.requests / r.seconds).toFixed(0)} req/s)`,
  );
  lines.push(`rejected (${r.rejected.length}):`);
  for (const x of r.rejected) {
    lines.push(`  ${x.file}: ${x.status} ${x.code ?? ''} at ${x.expression ?? '?'} (${x.issues} issue(s)) — ${x.diagnostics ?? ''}`);
  }
  lines.push(`duplicate Type/id (later files overwrite earlier): ${r.duplicates.map((d) => `${d.key} ← ${d.files.join(', ')}`).join('; ') || 'none'}`);
  lines.push(`second search parameter: ${r.paramsTested.size} distinct parameters of ${types.size} types tested`);
  if (r.commonOnly.length) lines.push(`  found only by a common parameter (_tag/_profile/_security/_source): ${r.commonOnly.join(', ')}`);
  lines.push(`no search parameter value besides _id (${r.noSecondParam.length}): ${r.noSecondParam.map((x) => x.file).join(', ') || 'none'}`);
  lines.push(`failures (${r.failures.length}):`);
  for (const f of r.failures.slice(0, 200)) lines.push(`  ${f.file} [${f.step}] ${f.detail}`);
  if (r.failures.length > 200) lines.push(`  … ${r.failures.length - 200} more`);
  return lines.join('\n');
}
