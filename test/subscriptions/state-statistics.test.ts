/**
 * The pipeline keeps subscription_state's planner statistics current as subscriptions arrive in bulk,
 * so the statements that reuse one generic plan (event numbering, delivery progress) look rows up by
 * key rather than keep a scan planned while the table was small.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4Subscription } from '../support/subscription-seed.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { TEST_BACKEND } from '../support/test-db.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

async function until<T>(read: () => Promise<T>, pred: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await read();
    if (pred(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.runIf(TEST_BACKEND === 'pg')('subscription_state statistics', () => {
  it('are refreshed once 64 subscriptions exist, without waiting for autovacuum', async () => {
    const { store, db } = server.clarion;
    for (let i = 0; i < 70; i++) await store.create(r4Subscription({ status: 'off' }));
    const planned = await until(
      async () => (await db.query<{ n: number }>("SELECT reltuples::int AS n FROM pg_class WHERE oid = 'subscription_state'::regclass")).rows[0].n,
      (n) => n >= 64,
    );
    expect(planned).toBeGreaterThanOrEqual(64);
  });
});
