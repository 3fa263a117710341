/**
 * Exact-match keys of a search filter: the `tokens` keys (format at the top of extract.ts) such that a
 * resource matches the filter exactly when its index holds at least one of them. Subscription
 * matching uses them to index subscriptions by the values of their filters (`patient=Patient/123` →
 * `patient>Patient/123`), so a change only meets the subscriptions keyed by one of its own tokens.
 *
 * The keys are read off the filter's condition (conditions.ts), the very tree that SQL and in-memory
 * matching evaluate: a top-level `keys` condition holds exactly when `tokens` contains
 * `code + suffix` for one of its suffixes (match.ts), so the keys cannot drift from matching.
 */
import type { SearchFilter } from './types.js';
import { filterCondition } from './conditions.js';

/**
 * The full token keys (`code` + suffix) of a filter whose condition is a plain exact-match test
 * (token, reference, uri or `_id` without `:not`, `:missing`, `:text`, `:above`/`:below`, chains), or
 * undefined when the filter is anything else. An empty array means the filter can never match (e.g.
 * `subject:Patient=Group/1`).
 */
export function filterTokenKeys(resourceType: string, filter: SearchFilter): string[] | undefined {
  if (filter.chain) return undefined;
  // The keys of token/reference/uri values do not depend on "now" (only date `ap` does).
  const cond = filterCondition(resourceType, filter, 0);
  if (cond.k === 'false') return [];
  if (cond.k !== 'keys' || !('code' in cond.src)) return undefined;
  const code = cond.src.code;
  return [...new Set(cond.keys.map((k) => code + k))];
}
