/**
 * The indexed registry of the subscriptions the change-feed consumer matches changes against. For a
 * change that fired a topic, `candidates` returns the subscriptions of that topic that may match, and
 * `matches` decides each one with the search engine (all its filters AND-ed, the same semantics as
 * search). The point is cost: a change must not pay for the subscriptions it cannot match.
 *
 * Index: per (topic url, resource type), a subscription is filed under ONE selective filter, an
 * exact-match filter on a token/reference/uri/_id parameter (`patient=Patient/123`), by the token keys
 * that filter needs (`patient>Patient/123`, see src/fhir/search/filter-keys.ts): a resource matches
 * that filter exactly when its own index holds one of those keys. A change looks up each of its tokens,
 * so only subscriptions whose selective filter already matches become candidates, whatever the number
 * of others. Subscriptions without such a filter (no filters, or only `:not`, `:missing`, string,
 * date, number… filters) are on the (topic, type) "scan" list and are candidates for every change.
 *
 * Filters and resource types (R5 `filterBy.resourceType`: "the resource type this filter applies to"):
 * - a filter naming a resource type applies to changes of that type only, and is ignored for changes
 *   of other types (a multi-resource topic can be filtered per type; fhir-candle does the same);
 * - a filter without a type applies to every resource type of the topic. Where its parameter does not
 *   exist for one of those types, the subscription matches no resource of that type (failing closed:
 *   dropping the filter would send events the subscriber restricted away, e.g. other patients' data);
 * - `_type=Encounter,Observation` restricts the resource types the subscription is notified about.
 *
 * Topics: a subscription's topic canonical may carry `|version`. Subscriptions are grouped by url;
 * one pinned to a version is a candidate only when the caller names that version (or none).
 */
import type { Resource } from 'fhir/r4.js';
import { Errors, FhirError } from '../fhir/errors.js';
import { parseSearchRequest } from '../fhir/search/parse.js';
import { matchesSearch } from '../fhir/search/match.js';
import { filterTokenKeys } from '../fhir/search/filter-keys.js';
import { getSearchParam } from '../fhir/search/params.js';
import type { SearchFilter, SearchIndex } from '../fhir/search/types.js';
import { parseCanonical } from '../topics/topic-model.js';
import { resourceTypeOf } from '../topics/topic-rules.js';
import type { SubscriptionFilter, SubscriptionSpec } from './subscription-model.js';

/** The compiled filters of one subscription for one resource type. */
export interface TypeFilters {
  /** AND-ed filters that apply to this type (empty: every resource of the type matches). */
  filters: SearchFilter[];
  /** Token keys of the selective filter the subscription is indexed under; undefined: scan list. */
  keys?: string[];
  /** Why the subscription can never match this type, if it cannot. */
  never?: string;
}

export interface CompiledSubscriptionFilters {
  /** Resource types the subscription is notified about (the topic's, narrowed by `_type`). */
  types: string[];
  byType: Map<string, TypeFilters>;
}

function filterName(f: SubscriptionFilter): string {
  return f.modifier ? `${f.parameter}:${f.modifier}` : f.parameter;
}

/** The search parameter code of a filter (`patient` for the chain `patient.gender`). */
function paramCode(f: SubscriptionFilter): string {
  const dot = f.parameter.indexOf('.');
  return dot < 0 ? f.parameter : f.parameter.slice(0, dot);
}

/** Lower rank = more selective: ids and references name one resource, tokens like status do not. */
function selectivity(f: SearchFilter, keys: string[]): number {
  const rank = f.code === '_id' ? 0 : f.type === 'reference' || f.code === 'identifier' ? 1 : f.type === 'uri' ? 2 : 3;
  return rank * 1_000_000 + keys.length;
}

function compileForType(type: string, filters: SubscriptionFilter[], typed: (f: SubscriptionFilter) => boolean): TypeFilters {
  const parsed: SearchFilter[] = [];
  for (const f of filters) {
    if (f.resourceType !== undefined && resourceTypeOf(f.resourceType) !== type) continue;
    if (!typed(f) && !getSearchParam(type, paramCode(f))?.expression) {
      return { filters: [], never: `filter '${filterName(f)}' has no search parameter '${f.parameter}' for ${type}` };
    }
    const search = parseSearchRequest(type, [[filterName(f), f.value]], { strict: true });
    // Chains need the referenced resources, which matching does not have: refuse them loudly rather
    // than never match.
    if (search.filters.some((x) => x.chain)) throw Errors.invalidParameter({ name: filterName(f), reason: 'chained parameters are not supported in subscription filters' });
    parsed.push(...search.filters);
  }
  let best: { keys: string[]; rank: number } | undefined;
  for (const f of parsed) {
    const keys = filterTokenKeys(type, f);
    if (keys === undefined) continue;
    if (keys.length === 0) return { filters: parsed, never: `filter '${f.code}' can never match a ${type}` };
    const rank = selectivity(f, keys);
    if (!best || rank < best.rank) best = { keys, rank };
  }
  return { filters: parsed, ...(best ? { keys: best.keys } : {}) };
}

/**
 * Compiles a subscription's filters for the resource types of its topic. Throws a FhirError (from the
 * search parser, strict) when a filter is not a valid search on the type(s) it applies to.
 */
export function compileSubscriptionFilters(filters: SubscriptionFilter[], topicResourceTypes: readonly string[]): CompiledSubscriptionFilters {
  let types = [...new Set(topicResourceTypes)];
  const rest: SubscriptionFilter[] = [];
  for (const f of filters) {
    if (f.parameter === '_type' && !f.modifier) {
      const allowed = new Set(f.value.split(',').map((v) => resourceTypeOf(v.trim()) ?? v.trim()));
      types = types.filter((t) => allowed.has(t));
    } else rest.push(f);
  }
  const byType = new Map<string, TypeFilters>();
  // Untyped filters must exist for at least one type of the topic (otherwise they are plain errors).
  for (const f of rest) {
    if (f.resourceType !== undefined || topicResourceTypes.length === 0) continue;
    if (!topicResourceTypes.some((t) => getSearchParam(t, paramCode(f))?.expression)) {
      parseSearchRequest(topicResourceTypes[0], [[filterName(f), f.value]], { strict: true });
    }
  }
  // Typed filters are parsed for their own type even when the topic never fires it (to report errors).
  for (const f of rest) {
    const t = f.resourceType !== undefined ? resourceTypeOf(f.resourceType) : undefined;
    if (f.resourceType !== undefined && !t) throw Errors.invalidParameter({ name: filterName(f), reason: `'${f.resourceType}' is not a resource type` });
    if (t && !types.includes(t)) parseSearchRequest(t, [[filterName(f), f.value]], { strict: true });
  }
  for (const type of types) byType.set(type, compileForType(type, rest, (f) => f.resourceType !== undefined));
  return { types, byType };
}

interface Entry {
  spec: SubscriptionSpec;
  url: string;
  version?: string;
  compiled: CompiledSubscriptionFilters;
  /** Group keys (url + type) and index keys this entry is filed under, for removal. */
  filed: { group: string; key?: string }[];
}

interface Group {
  /**
   * Subscription ids by index key: one id as itself, several as a Set. Most keys name one resource
   * (`patient>Patient/123`) and so one subscription; a Set each would be most of the index's memory
   * with 100,000 subscriptions, and every major garbage collection walks it.
   */
  keyed: Map<string, string | Set<string>>;
  scan: Set<string>;
}

const groupKey = (url: string, type: string): string => `${url}\u0000${type}`;

export class SubscriptionIndex {
  private readonly entries = new Map<string, Entry>();
  private readonly groups = new Map<string, Group>();
  /** Number of filter evaluations (`matches` calls that ran the search engine) since creation. */
  evaluations = 0;

  get size(): number {
    return this.entries.size;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  get(id: string): SubscriptionSpec | undefined {
    return this.entries.get(id)?.spec;
  }

  /** Adds a subscription, or replaces the one with the same id. The caller decides which are active. */
  add(spec: SubscriptionSpec, compiled: CompiledSubscriptionFilters): void {
    this.remove(spec.id);
    const { url, version } = parseCanonical(spec.topic);
    const entry: Entry = { spec, url, ...(version ? { version } : {}), compiled, filed: [] };
    for (const type of compiled.types) {
      const tf = compiled.byType.get(type);
      if (!tf || tf.never) continue;
      const gk = groupKey(url, type);
      let g = this.groups.get(gk);
      if (!g) {
        g = { keyed: new Map(), scan: new Set() };
        this.groups.set(gk, g);
      }
      if (tf.keys) {
        for (const key of tf.keys) {
          const ids = g.keyed.get(key);
          if (ids === undefined || ids === spec.id) g.keyed.set(key, spec.id);
          else if (typeof ids === 'string') g.keyed.set(key, new Set([ids, spec.id]));
          else ids.add(spec.id);
          entry.filed.push({ group: gk, key });
        }
      } else {
        g.scan.add(spec.id);
        entry.filed.push({ group: gk });
      }
    }
    this.entries.set(spec.id, entry);
  }

  /** Removes a subscription; false when it was not registered. */
  remove(id: string): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    for (const { group, key } of entry.filed) {
      const g = this.groups.get(group);
      if (!g) continue;
      if (key === undefined) g.scan.delete(id);
      else {
        const ids = g.keyed.get(key);
        if (ids === id) g.keyed.delete(key);
        else if (typeof ids === 'object') {
          ids.delete(id);
          if (ids.size === 1) g.keyed.set(key, ids.values().next().value as string);
        }
      }
      if (g.scan.size === 0 && g.keyed.size === 0) this.groups.delete(group);
    }
    this.entries.delete(id);
    return true;
  }

  /**
   * Ids of the subscriptions of `topic` (`url` or `url|version`) that may match a resource of
   * `resourceType` with search index `index`: those filed under one of its tokens, plus the scan list.
   * Cost: one map lookup per token of the resource, plus the candidates themselves.
   */
  candidates(topic: string, resourceType: string, index: SearchIndex): string[] {
    const { url, version } = parseCanonical(topic);
    const g = this.groups.get(groupKey(url, resourceType));
    if (!g) return [];
    const out = new Set<string>();
    if (g.keyed.size > 0) {
      for (const token of index.tokens) {
        const ids = g.keyed.get(token);
        if (typeof ids === 'string') out.add(ids);
        else if (ids) for (const id of ids) out.add(id);
      }
    }
    for (const id of g.scan) out.add(id);
    if (version === undefined) return [...out];
    return [...out].filter((id) => {
      const v = this.entries.get(id)?.version;
      return v === undefined || v === version;
    });
  }

  /** Whether the subscription's filters (AND-ed, those applying to the resource's type) match. */
  matches(id: string, resource: Resource, index?: SearchIndex): boolean {
    const entry = this.entries.get(id);
    if (!entry) return false;
    const tf = entry.compiled.byType.get(resource.resourceType);
    if (!tf || tf.never) return false;
    if (tf.filters.length === 0) return true;
    this.evaluations++;
    try {
      return matchesSearch(resource, tf.filters, index ? { index } : {});
    } catch (err) {
      // Defensive: compileSubscriptionFilters refuses chains, the only filters that throw here.
      if (err instanceof FhirError) return false;
      throw err;
    }
  }
}
