/**
 * `_summary` and `_elements` trimming of returned resources. Summary elements come from the R4
 * StructureDefinitions (ElementDefinition.isSummary in profiles-resources.json, loaded lazily).
 * Marking the result SUBSETTED is the caller's job.
 */
import type { Bundle, Resource, StructureDefinition } from 'fhir/r4.js';
import { loadDefinitionBundle } from '../definitions.js';
import type { ParsedSearch } from './types.js';

interface TopLevel {
  /** JSON property names (choice elements expanded to their prefix, e.g. `value` for value[x]). */
  summary: Set<string>;
  mandatory: Set<string>;
  choices: Set<string>;
}

let byType: Map<string, TopLevel> | undefined;

function load(): Map<string, TopLevel> {
  if (byType) return byType;
  byType = new Map();
  const bundle = loadDefinitionBundle<Bundle<StructureDefinition>>('profiles-resources.json');
  for (const e of bundle.entry ?? []) {
    const sd = e.resource;
    if (!sd || sd.resourceType !== 'StructureDefinition' || sd.kind !== 'resource') continue;
    const t: TopLevel = { summary: new Set(['id', 'meta', 'implicitRules']), mandatory: new Set(), choices: new Set() };
    for (const el of sd.snapshot?.element ?? []) {
      const parts = el.path.split('.');
      if (parts.length !== 2) continue;
      let name = parts[1];
      if (name.endsWith('[x]')) {
        name = name.slice(0, -3);
        t.choices.add(name);
      }
      if (el.isSummary) t.summary.add(name);
      if ((el.min ?? 0) > 0) t.mandatory.add(name);
    }
    byType.set(sd.type, t);
  }
  return byType;
}

function baseName(key: string, choices: Set<string>): string {
  if (key.startsWith('_')) key = key.slice(1); // primitive extensions follow their element
  for (const c of choices) {
    if (key.length > c.length && key.startsWith(c) && /[A-Z]/.test(key[c.length])) return c;
  }
  return key;
}

function pick(resource: Resource, keep: (name: string) => boolean, choices: Set<string>): Resource {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(resource)) {
    if (k === 'resourceType' || keep(baseName(k, choices))) out[k] = v;
  }
  return out as unknown as Resource;
}

/**
 * Returns the resource trimmed per `_summary` (true/text/data) or `_elements` (the listed top-level
 * elements plus id, meta and mandatory elements). Resources are returned unchanged for `_summary=false`
 * /`count` or when neither is given. Never mutates the input.
 */
export function applySummaryOrElements(resource: Resource, search: Pick<ParsedSearch, 'summary' | 'elements'>): Resource {
  const info = load().get(resource.resourceType);
  const choices = info?.choices ?? new Set<string>();
  switch (search.summary) {
    case 'true':
      return info ? pick(resource, (n) => info.summary.has(n), choices) : resource;
    case 'text':
      return pick(resource, (n) => n === 'text' || n === 'id' || n === 'meta' || !!info?.mandatory.has(n), choices);
    case 'data':
      return pick(resource, (n) => n !== 'text', choices);
    default:
      break;
  }
  if (search.elements && search.elements.length > 0) {
    const wanted = new Set(search.elements.map((e) => (e.endsWith('[x]') ? e.slice(0, -3) : e)));
    return pick(resource, (n) => wanted.has(n) || n === 'id' || n === 'meta' || !!info?.mandatory.has(n), choices);
  }
  return resource;
}

/** Whether applySummaryOrElements would change resources of this search. */
export function trimsResources(search: Pick<ParsedSearch, 'summary' | 'elements'>): boolean {
  return search.summary === 'true' || search.summary === 'text' || search.summary === 'data' || (!search.summary && !!search.elements?.length);
}
