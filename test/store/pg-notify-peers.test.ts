/**
 * NOTIFY between processes on PostgreSQL: a process alone on its schema hands notifications to its own
 * listeners without a round trip; once another process listens on the same schema, notifications go
 * through PostgreSQL and reach it. Each PgDb here stands for one process (its own pool and LISTEN
 * connection), as in production.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { StorageConfig } from '../../src/store/open-db.js';
import { PgDb } from '../../src/store/pg-db.js';
import { dropStorage, freshStorageConfig, TEST_BACKEND, TEST_PG_URL } from '../support/test-db.js';
import { until } from '../support/until.js';

const config = freshStorageConfig();
const otherSchema = freshStorageConfig();
const schemas = [config, otherSchema];
const open: PgDb[] = [];

/** A process on the schema of `storage` (a fresh PostgreSQL schema from freshStorageConfig). */
async function processOn(storage: StorageConfig): Promise<PgDb> {
  const schema = storage.kind === 'pg' ? storage.schema : undefined;
  const db = await PgDb.open({ connectionString: TEST_PG_URL, schema, max: 2, peerCheckMs: 20 });
  open.push(db);
  return db;
}

/** Listens on `channel`: the payloads received so far, and a wait until they satisfy `pred`. */
async function collect(db: PgDb, channel: string): Promise<{ got: string[]; until: (pred: (got: string[]) => boolean) => Promise<void> }> {
  const got: string[] = [];
  const waiters: (() => void)[] = [];
  await db.listen(channel, (p) => {
    got.push(p);
    for (const w of waiters.splice(0)) w();
  });
  const until = async (pred: (g: string[]) => boolean): Promise<void> => {
    while (!pred(got)) await new Promise<void>((r) => waiters.push(r));
  };
  return { got, until };
}

/** Notifies every 20 ms until `done` resolves (a peer is seen within one peer check). */
async function notifyUntil(db: PgDb, channel: string, payload: string, done: Promise<void>): Promise<void> {
  let finished = false;
  void done.then(() => (finished = true));
  while (!finished) {
    await db.notify(channel, payload);
    await Promise.race([done, new Promise((r) => setTimeout(r, 20))]);
  }
}

describe.runIf(TEST_BACKEND === 'pg')('NOTIFY between processes (pg)', () => {
  afterAll(async () => {
    for (const db of open) await db.close();
    for (const s of schemas) await dropStorage(s);
  });

  it('a process alone hands its notifications to its own listeners, counting no peers', async () => {
    const a = await processOn(config);
    const own = await collect(a, 'peers_alone');
    await a.notify('peers_alone', 'first'); // before the first count: through PostgreSQL
    await own.until((g) => g.includes('first'));
    // Once counted (within a peer check), it is alone: later notifications still arrive, in order.
    await notifyUntil(a, 'peers_alone', 'again', (async () => {
      while (a.listeningPeers !== 0) await new Promise((r) => setTimeout(r, 5));
    })());
    for (const p of ['x1', 'x2', 'x3']) await a.notify('peers_alone', p);
    await own.until((g) => g.includes('x3'));
    expect(own.got.filter((p) => p.startsWith('x'))).toEqual(['x1', 'x2', 'x3']);
  });

  it('a process that starts listening later receives the others\u2019 notifications', async () => {
    const a = await processOn(config);
    const b = await processOn(config);
    const atB = await collect(b, 'peers_join');
    await notifyUntil(a, 'peers_join', 'from-a', atB.until((g) => g.includes('from-a')));
    // The first notifications go through PostgreSQL before A's first count of peers is in: wait for it.
    await until(async () => a.listeningPeers !== undefined);
    expect(a.listeningPeers).toBeGreaterThanOrEqual(1);
  });

  it('listeners on another schema are not peers', async () => {
    const c = await processOn(otherSchema);
    await collect(c, 'peers_other');
    const alone = freshStorageConfig();
    schemas.push(alone);
    const a = await processOn(alone);
    const own = await collect(a, 'peers_other');
    await notifyUntil(a, 'peers_other', 'n', own.until(() => a.listeningPeers !== undefined));
    expect(a.listeningPeers).toBe(0);
  });
});
