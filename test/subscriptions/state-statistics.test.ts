/**
 * The pipeline keeps subscription_state's planner statistics current as subscriptions arrive in bulk,
 * so the statements that reuse one generic plan (event numbering, delivery progress) look rows up by
 * key rather than keep a scan planned while the table was small.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4Subscription } from '../support/subscription-seed.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { TEST_BACKEND } from '../support/test-db.js';
import { until } from '../support/until.js';

let server: TestServer;

beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => server.close());

async function plannedRows(): Promise<number> {
  const { rows } = await server.clarion.db.query<{ n: number }>("SELECT reltuples::int AS n FROM pg_class WHERE oid = 'subscription_state'::regclass");
  return rows[0].n;
}

describe.runIf(TEST_BACKEND === 'pg')('subscription_state statistics', () => {
  it('are refreshed once 64 subscriptions exist, without waiting for autovacuum', async () => {
    for (let i = 0; i < 70; i++) await server.clarion.store.create(r4Subscription({ status: 'off' }));
    await until(async () => (await plannedRows()) >= 64, 20_000);
    expect(await plannedRows()).toBeGreaterThanOrEqual(64);
  });
});
