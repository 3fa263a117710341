/**
 * The store hands each committed version's search index to RecentSearchIndexes (for the subscription
 * matcher): bounded, taken once, keyed by the exact version, and never for a write that rolled back.
 */
import type { Patient, Resource } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { extractSearchIndex } from '../../src/fhir/search/extract.js';
import type { SearchIndex } from '../../src/fhir/search/types.js';
import type { Db } from '../../src/store/db.js';
import { RecentSearchIndexes } from '../../src/store/recent-search-indexes.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { openTestDb } from '../support/test-db.js';

const version = (id: string, versionId: string, lastUpdated = '2024-05-01T10:00:00.000Z'): Patient => ({
  resourceType: 'Patient',
  id,
  meta: { versionId, lastUpdated },
});
const indexNamed = (name: string): SearchIndex => ({ idx: { name: { n: [name] } }, tokens: [`_id=${name}`] });

describe('RecentSearchIndexes', () => {
  it('gives an index once, then forgets it', () => {
    const cache = new RecentSearchIndexes();
    const index = indexNamed('a');
    cache.put(version('a', '1'), index);
    expect(cache.take(version('a', '1'))).toBe(index);
    expect(cache.take(version('a', '1'))).toBeUndefined();
    expect(cache.size).toBe(0);
  });

  it('keys by type, id, version and lastUpdated: another version or instant of the same id misses', () => {
    const cache = new RecentSearchIndexes();
    cache.put(version('a', '1'), indexNamed('v1'));
    expect(cache.take(version('a', '2'))).toBeUndefined();
    expect(cache.take(version('a', '1', '2024-05-01T10:00:00.001Z'))).toBeUndefined();
    expect(cache.take(version('b', '1'))).toBeUndefined();
    expect(cache.take({ ...version('a', '1'), resourceType: 'Basic' })).toBeUndefined();
    expect(cache.take(version('a', '1'))?.tokens).toEqual(['_id=v1']);
  });

  it('ignores resources without an id, versionId or lastUpdated', () => {
    const cache = new RecentSearchIndexes();
    cache.put({ resourceType: 'Patient', id: 'a' }, indexNamed('a'));
    cache.put({ resourceType: 'Patient', id: 'a', meta: { versionId: '1' } }, indexNamed('a'));
    expect(cache.size).toBe(0);
    expect(cache.take({ resourceType: 'Patient', id: 'a' })).toBeUndefined();
  });

  it('holds at most maxEntries, dropping the oldest first', () => {
    const cache = new RecentSearchIndexes(3);
    for (let i = 1; i <= 5; i++) cache.put(version(`p${i}`, '1'), indexNamed(`p${i}`));
    expect(cache.size).toBe(3);
    expect(cache.take(version('p1', '1'))).toBeUndefined();
    expect(cache.take(version('p2', '1'))).toBeUndefined();
    for (const id of ['p3', 'p4', 'p5']) expect(cache.take(version(id, '1'))?.tokens).toEqual([`_id=${id}`]);
  });
});

describe('the resource store puts committed indexes', () => {
  let db: Db;
  let cleanup: () => Promise<void>;
  let cache: RecentSearchIndexes;
  let store: ResourceStore;

  beforeAll(async () => {
    ({ db, cleanup } = await openTestDb());
    cache = new RecentSearchIndexes();
    store = ResourceStore.create(db, { clock: { now: () => new Date() }, recentSearchIndexes: cache });
  });
  afterAll(async () => cleanup());

  /** The index put for the version as stored in the database, as the matcher would read it back. */
  async function takeStored(type: string, id: string, versionId: string): Promise<{ stored: Resource; index: SearchIndex | undefined }> {
    const stored = await store.vread(type, id, versionId);
    return { stored, index: cache.take(stored) };
  }

  it('puts the index of a create and of an update, equal to the one extracted from the stored content', async () => {
    const { resource } = await store.create({ resourceType: 'Patient', name: [{ family: 'Keyes' }] } as Patient);
    const v1 = await takeStored('Patient', resource.id!, '1');
    expect(v1.index).toEqual(extractSearchIndex(v1.stored));

    await store.update({ ...resource, name: [{ family: 'Keyes-Okafor' }] } as Patient);
    const v2 = await takeStored('Patient', resource.id!, '2');
    expect(v2.index).toEqual(extractSearchIndex(v2.stored));
    expect(v2.index).not.toEqual(v1.index); // the name and _lastUpdated differ: not version 1's index
    expect(cache.size).toBe(0);
  });

  it('puts nothing for a delete', async () => {
    const { resource } = await store.create({ resourceType: 'Patient' });
    expect(cache.take(resource)).toBeDefined();
    await store.delete('Patient', resource.id!);
    expect(cache.size).toBe(0);
  });

  it('in a transaction, puts only once it has committed', async () => {
    const written = await store.transaction(async (s) => {
      const a = await s.create({ resourceType: 'Patient', name: [{ family: 'A' }] } as Patient);
      const b = await s.update({ ...a.resource, name: [{ family: 'B' }] } as Patient);
      expect(cache.size).toBe(0); // not committed yet
      return [a.resource, b.resource];
    });
    expect(cache.size).toBe(2);
    for (const r of written) {
      const { stored, index } = await takeStored('Patient', r.id!, r.meta!.versionId!);
      expect(index).toEqual(extractSearchIndex(stored));
    }
  });

  it('puts nothing for a transaction that rolls back', async () => {
    const failure = new Error('roll back');
    await expect(
      store.transaction(async (s) => {
        await s.create({ resourceType: 'Patient', name: [{ family: 'Never' }] } as Patient);
        throw failure;
      }),
    ).rejects.toBe(failure);
    expect(cache.size).toBe(0);
  });
});
