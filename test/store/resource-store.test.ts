import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import { FhirError } from '../../src/fhir/errors.js';
import type { Db } from '../../src/store/db.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { openTestDb } from '../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;
let store: ResourceStore;
let commits = 0;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  store = ResourceStore.create(db, { clock: { now: () => new Date() }, afterCommit: () => commits++ });
});
afterAll(async () => cleanup());

async function expectFhirError(p: Promise<unknown>, status: number, code: string): Promise<FhirError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FhirError);
  const fe = err as FhirError;
  expect(fe.status).toBe(status);
  expect(fe.code).toBe(code);
  return fe;
}

const patient = (family: string): Patient => ({ resourceType: 'Patient', name: [{ family }] });

describe('resource store', () => {
  it('creates with a server id, version 1 and meta, and reads it back', async () => {
    const before = commits;
    const { resource, created } = await store.create({ ...patient('Smith'), id: 'client-id', meta: { versionId: '9', tag: [{ code: 't' }] } });
    expect(created).toBe(true);
    expect(resource.id).not.toBe('client-id');
    expect(resource.meta?.versionId).toBe('1');
    expect(resource.meta?.tag).toEqual([{ code: 't' }]);
    expect(Object.keys(resource).slice(0, 3)).toEqual(['resourceType', 'id', 'meta']);
    expect(await store.read('Patient', resource.id!)).toEqual(resource);
    expect(commits).toBe(before + 1);
  });

  it('updates with a new version and keeps history; vread returns each version', async () => {
    const { resource: v1 } = await store.create(patient('A'));
    const { resource: v2, created } = await store.update({ ...v1, name: [{ family: 'B' }] } as Patient);
    expect(created).toBe(false);
    expect(v2.meta?.versionId).toBe('2');
    expect(((await store.vread('Patient', v1.id!, '1')) as Patient).name?.[0].family).toBe('A');
    expect(((await store.vread('Patient', v1.id!, '2')) as Patient).name?.[0].family).toBe('B');
    await expectFhirError(store.vread('Patient', v1.id!, '3'), 404, 'CLARION_VERSION_NOT_FOUND');
    await expectFhirError(store.vread('Patient', v1.id!, 'x'), 404, 'CLARION_VERSION_NOT_FOUND');
    const h = await store.history({ type: 'Patient', id: v1.id, count: 10 });
    expect(h.total).toBe(2);
    expect(h.entries.map((e) => [e.versionId, e.method])).toEqual([
      [2, 'PUT'],
      [1, 'POST'],
    ]);
  });

  it('update-as-create makes version 1 with the client id', async () => {
    const r = await store.update({ ...patient('C'), id: 'chosen-1' });
    expect(r.created).toBe(true);
    expect(r.resource.id).toBe('chosen-1');
    expect(r.resource.meta?.versionId).toBe('1');
  });

  it('rejects invalid ids and a missing id on update', async () => {
    await expectFhirError(store.update({ ...patient('C'), id: 'bad id!' }), 400, 'CLARION_INVALID_ID');
    await expectFhirError(store.update(patient('C')), 400, 'CLARION_MISSING_ID');
  });

  it('If-Match: matching version updates, stale version fails with 412', async () => {
    const { resource } = await store.create(patient('D'));
    await store.update({ ...resource, active: true } as Patient, { ifMatch: 1 });
    const err = await expectFhirError(store.update({ ...resource, active: false } as Patient, { ifMatch: 1 }), 412, 'CLARION_VERSION_CONFLICT');
    expect(err.issues[0].diagnostics).toContain('current version is 2');
    await expectFhirError(store.update({ ...patient('x'), id: 'never-there' }, { ifMatch: 1 }), 412, 'CLARION_VERSION_CONFLICT');
  });

  it('deletes logically: 410 on read, history kept, second delete is a no-op, update revives it', async () => {
    const { resource } = await store.create(patient('E'));
    expect(await store.delete('Patient', resource.id!)).toEqual({ deleted: true, versionId: 2 });
    await expectFhirError(store.read('Patient', resource.id!), 410, 'CLARION_GONE');
    expect(await store.delete('Patient', resource.id!)).toEqual({ deleted: false });
    await expectFhirError(store.vread('Patient', resource.id!, '2'), 410, 'CLARION_GONE');
    const revived = await store.update({ ...resource });
    expect(revived.created).toBe(true);
    expect(revived.resource.meta?.versionId).toBe('3');
    await expectFhirError(store.delete('Patient', 'no-such-id'), 404, 'CLARION_NOT_FOUND');
  });

  it('writes each change record in the same transaction: a rolled-back transaction leaves nothing', async () => {
    const before = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM resource_history')).rows[0].n;
    const commitsBefore = commits;
    await expect(
      store.transaction(async (s) => {
        await s.create(patient('F'));
        await s.create(patient('G'));
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const after = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM resource_history')).rows[0].n;
    expect(after).toBe(before);
    expect(commits).toBe(commitsBefore);
    const ok = await store.transaction(async (s) => [await s.create(patient('H')), await s.create(patient('I'))]);
    expect(ok).toHaveLength(2);
    expect(commits).toBe(commitsBefore + 1);
  });

  it('records interaction and previous version on every change', async () => {
    const { resource } = await store.create(patient('J'));
    await store.update({ ...resource });
    await store.delete('Patient', resource.id!);
    await store.update({ ...resource });
    const { rows } = await db.query<{ version_id: number; previous_version_id: number | null; interaction: string; method: string; deleted: boolean }>(
      'SELECT version_id, previous_version_id, interaction, method, deleted FROM resource_history WHERE id = $1 ORDER BY seq',
      [resource.id],
    );
    expect(rows).toEqual([
      { version_id: 1, previous_version_id: null, interaction: 'create', method: 'POST', deleted: false },
      { version_id: 2, previous_version_id: 1, interaction: 'update', method: 'PUT', deleted: false },
      { version_id: 3, previous_version_id: 2, interaction: 'delete', method: 'DELETE', deleted: true },
      { version_id: 4, previous_version_id: 3, interaction: 'create', method: 'PUT', deleted: false },
    ]);
  });

  it('concurrent updates of one resource each get their own version, none lost', async () => {
    const { resource } = await store.create(patient('K'));
    const n = 12;
    await Promise.all(Array.from({ length: n }, (_, i) => store.update({ ...resource, name: [{ family: `K${i}` }] } as Patient)));
    const cur = await store.read('Patient', resource.id!);
    expect(cur.meta?.versionId).toBe(String(n + 1));
    const h = await store.history({ type: 'Patient', id: resource.id, count: 100 });
    expect(h.entries.map((e) => e.versionId)).toEqual(Array.from({ length: n + 1 }, (_, i) => n + 1 - i));
  });

  it('runs write hooks on create, update and delete, and a hook can refuse a write', async () => {
    const seen: string[] = [];
    const hooked = ResourceStore.create(db, {
      clock: { now: () => new Date() },
      hooks: new Map([
        [
          'Basic',
          {
            beforeWrite: ({ resource, previous, interaction }) => {
              seen.push(`${interaction}:${previous?.meta?.versionId ?? '-'}`);
              if ((resource as { code?: { text?: string } }).code?.text === 'refuse') throw new FhirError('TEST', 422, [{ severity: 'error', code: 'business-rule', diagnostics: 'no' }]);
              return { ...resource, implicitRules: 'http://hooked.example' };
            },
            beforeDelete: ({ id }) => {
              seen.push(`delete:${id}`);
            },
          },
        ],
      ]),
    });
    const { resource } = await hooked.create({ resourceType: 'Basic', code: { text: 'ok' } } as never);
    expect(resource.implicitRules).toBe('http://hooked.example');
    await hooked.update({ ...resource });
    await expectFhirError(hooked.update({ ...resource, code: { text: 'refuse' } } as never), 422, 'TEST');
    await hooked.delete('Basic', resource.id!);
    expect(seen).toEqual(['create:-', 'update:1', 'update:2', `delete:${resource.id}`]);
    expect((await hooked.history({ type: 'Basic', id: resource.id, count: 10 })).total).toBe(3);
  });

  it('pages system history newest first with a stable keyset cursor', async () => {
    const since = new Date();
    for (let i = 0; i < 5; i++) await store.create({ resourceType: 'Observation', status: 'final', code: { text: `o${i}` } } as never);
    const first = await store.history({ type: 'Observation', since, count: 2 });
    expect(first.entries).toHaveLength(2);
    expect(first.nextBeforeSeq).toBeDefined();
    // A write between pages must not shift the next page.
    await store.create({ resourceType: 'Observation', status: 'final', code: { text: 'late' } } as never);
    const second = await store.history({ type: 'Observation', since, count: 2, beforeSeq: first.nextBeforeSeq });
    const third = await store.history({ type: 'Observation', since, count: 2, beforeSeq: second.nextBeforeSeq });
    const seen = [...first.entries, ...second.entries, ...third.entries].map((e) => e.seq);
    expect(new Set(seen).size).toBe(5);
    expect(third.nextBeforeSeq).toBeUndefined();
  });
});
