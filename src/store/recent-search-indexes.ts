/**
 * The search indexes of recently committed writes, so the event writer's matcher can reuse the index
 * the write already extracted instead of extracting it again from the change it reads back (the
 * extraction was ~9% of the server's CPU under write load, done twice per write that a topic concerns).
 *
 * Keyed by what identifies one stored content: resourceType, id, meta.versionId and meta.lastUpdated.
 * A version is only ever committed with one content, so an entry can never stand for other content —
 * provided entries are put only after their write committed (the store's job). Each entry is taken
 * once: the matcher reads a change once, and a retried batch simply extracts again.
 *
 * Bounded, oldest dropped first: entries the matcher never takes (types no topic uses, changes it read
 * before the write got to put its entry, another process's matcher) must not accumulate. A miss only
 * costs the extraction it would have saved.
 */
import type { Resource } from 'fhir/r4.js';
import type { SearchIndex } from '../fhir/search/types.js';

export class RecentSearchIndexes {
  // A Map iterates in insertion order: the first key is the oldest.
  private readonly entries = new Map<string, SearchIndex>();

  constructor(private readonly maxEntries = 2000) {}

  get size(): number {
    return this.entries.size;
  }

  /** Records the index of a stored version (call only once its write committed). */
  put(stored: Resource, index: SearchIndex): void {
    const key = keyOf(stored);
    if (key === undefined) return;
    this.entries.delete(key);
    this.entries.set(key, index);
    while (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value as string);
  }

  /** The index put for exactly this version, removed; undefined if unknown (extract it instead). */
  take(stored: Resource): SearchIndex | undefined {
    const key = keyOf(stored);
    if (key === undefined) return undefined;
    const index = this.entries.get(key);
    if (index !== undefined) this.entries.delete(key);
    return index;
  }
}

function keyOf(resource: Resource): string | undefined {
  const versionId = resource.meta?.versionId;
  const lastUpdated = resource.meta?.lastUpdated;
  if (!resource.id || !versionId || !lastUpdated) return undefined;
  // Ids, version ids and instants contain no '|' (ids are [A-Za-z0-9-.]), so the key is unambiguous.
  return `${resource.resourceType}|${resource.id}|${versionId}|${lastUpdated}`;
}
