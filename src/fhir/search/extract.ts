/**
 * Search index extraction: the write path calls `extractSearchIndex` on every create/update and stores
 * the result in `resources.idx` (jsonb) and `resources.tokens` (text[], GIN-indexed). The same index
 * is what in-memory matching (match.ts) evaluates, so SQL and in-memory search cannot disagree.
 *
 * ## tokens (exact-match keys; GIN `tokens @> / && ARRAY[...]`)
 * Each key is the parameter code followed by a key suffix. In every component, `\` and `|` are
 * escaped as `\\` and `\|` (normalize.ts `escapeKeyPart`), so keys are unambiguous.
 *   token      `code=CODE`            the code in any system (Coding.code, Identifier.value, ContactPoint.value, primitives, `true`/`false`)
 *              `code=SYSTEM|CODE`     system and code (`code=|CODE` when the value has no system)
 *              `code@SYSTEM`          any code in the system
 *              `identifier:of-type=TYPESYSTEM|TYPECODE|VALUE`   Identifier.type codings (for `:of-type`)
 *   reference  `subject>Patient/1`    relative references as `Type/id` (`/_history/n` removed);
 *                                      absolute URLs, `urn:` and `#contained` as written; canonicals
 *                                      as written (`url|version`) and without their version (`url`)
 *              `subject:identifier=…` Reference.identifier, with the token suffixes above
 *   uri        `url=VALUE`            the exact uri
 * Examples: `_id=example`, `gender=male`, `code=http://loinc.org|8480-6`, `code@http://loinc.org`,
 * `subject>Patient/example`.
 *
 * ## idx (jsonb; one key per parameter code that has values — presence of the key is `:missing=false`)
 *   string     `{ "n": [normalised…], "e": [exact…] }`   normalised = NFD, combining marks removed, lower
 *              case, whitespace trimmed and runs of whitespace made one space; HumanName indexes
 *              text/family/given/prefix/suffix, Address text/line/city/district/state/postalCode/country
 *   token      `{ "c": [codes…], "t": [normalised display/text…] }`  (c for _sort, t for `:text`)
 *   reference  `{ "r": [normalised references…] }`   (for _include and _sort)
 *   uri        `{ "u": [uris…] }`                     (for `:above`/`:below`)
 *   date       `{ "d": [[lo, hi]…] }`   epoch milliseconds, both inclusive (`2020` → whole year; Period
 *              start/end; open ends are ±1e300; values without a time zone are UTC)
 *   number     `{ "v": [[lo, hi]…] }`   a value is [v, v]; a Range is [low, high]
 *   quantity   `{ "q": [[lo, hi, system, code, unit]…] }`   Money: system urn:iso:std:iso:4217, code = currency
 *   composite  `{ "k": [[component…]…] }`  one entry per element matched by the composite expression, one
 *              object per component in the shape above plus `"k": [key suffixes…]` for token/reference/uri
 * `_lastUpdated` is indexed from meta.lastUpdated like any date (SQL uses the last_updated column, which
 * the store keeps equal to meta.lastUpdated).
 */
import type { Resource } from 'fhir/r4.js';
import type { SearchIndex } from './types.js';
import { searchParamsFor, type SearchParamDef } from './params.js';
import { evaluateTyped } from './fhirpath-eval.js';
import { compileFast, evaluateFast } from './fast-path.js';
import { hasValues, indexValues, type ParamData } from './index-values.js';

/** Index entries of one composite parameter. */
function compositeData(def: SearchParamDef, resource: Resource): ParamData | undefined {
  const elements = evaluateTyped(def.expression!, resource, resource);
  const entries: ParamData[][] = [];
  for (const el of elements) {
    const comps: ParamData[] = [];
    let complete = true;
    for (const c of def.components ?? []) {
      const values = evaluateTyped(c.expression, el.data, resource, el.path ?? el.type);
      const pi = indexValues(c.type, values);
      if (!hasValues(pi)) {
        complete = false;
        break;
      }
      comps.push(pi.keys.length > 0 ? { ...pi.data, k: pi.keys } : pi.data);
    }
    if (complete && comps.length > 0) entries.push(comps);
  }
  return entries.length > 0 ? { k: entries } : undefined;
}

/** How one parameter is extracted for a resource type, worked out once per type. */
interface ParamPlan {
  def: SearchParamDef;
  fast?: ReturnType<typeof compileFast>;
  /**
   * The resource's own properties the fast expression starts from (`participant` for
   * `Encounter.participant.individual`, every `value…` choice for `Observation.value`); when the
   * resource has none of them the parameter has no values. Undefined: always evaluate.
   */
  roots?: string[];
}

const plans = new Map<string, ParamPlan[]>();

function planFor(resourceType: string): ParamPlan[] {
  let plan = plans.get(resourceType);
  if (plan) return plan;
  plan = [];
  for (const def of searchParamsFor(resourceType).values()) {
    if (!def.expression || def.type === 'special') continue;
    if (def.type === 'composite') {
      plan.push({ def });
      continue;
    }
    const fast = compileFast(def.expression, resourceType);
    const firsts = fast?.map((steps) => steps[0]);
    const roots = firsts?.every((s) => s?.kind === 'field') ? firsts.flatMap((s) => (s.kind === 'field' ? s.alternatives.map((a) => a.key) : [])) : undefined;
    plan.push({ def, fast, roots });
  }
  plans.set(resourceType, plan);
  return plan;
}

function hasAny(resource: Resource, keys: string[]): boolean {
  const r = resource as unknown as Record<string, unknown>;
  for (const k of keys) if (r[k] !== undefined) return true;
  return false;
}

/** Computes the search index of a resource (every search parameter defined for its type). */
export function extractSearchIndex(resource: Resource): SearchIndex {
  const idx: Record<string, unknown> = {};
  const tokens: string[] = [];
  for (const { def, fast, roots } of planFor(resource.resourceType)) {
    if (def.type === 'composite') {
      const data = compositeData(def, resource);
      if (data) idx[def.code] = data;
      continue;
    }
    if (roots && !hasAny(resource, roots)) continue;
    const values = fast ? evaluateFast(fast, resource) : evaluateTyped(def.expression!, resource, resource);
    const pi = indexValues(def.type, values);
    if (!hasValues(pi)) continue;
    idx[def.code] = pi.data;
    for (const k of pi.keys) tokens.push(def.code + k);
  }
  return { idx, tokens };
}
