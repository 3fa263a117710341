/**
 * The push worker leaves websocket subscriptions to the hub: their events and heartbeats are never
 * claimed (nor scheduled) by the delivery queue, while rest-hook ones still are, and `end` still is.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimDue, nextDueAt } from '../../../src/delivery/delivery-queue.js';
import type { Db } from '../../../src/store/db.js';
import { openTestDb } from '../../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
});
afterAll(async () => {
  await cleanup?.();
});

async function state(id: string, channel: string, extra: { end?: Date } = {}): Promise<void> {
  // Active, 3 events never delivered, heartbeat due long ago.
  await db.query(
    `INSERT INTO subscription_state (subscription_id, topic_url, channel_type, status, events_since_start, delivered_through, heartbeat_period, end_at, updated_at)
     VALUES ($1, 'http://example.org/topic', $2, 'active', 3, 0, 1, $3, now() - interval '1 hour')`,
    [id, channel, extra.end?.toISOString() ?? null],
  );
}

describe('delivery queue and websocket subscriptions', () => {
  it('claims rest-hook work but not websocket events or heartbeats', async () => {
    await state('ws-1', 'websocket');
    await state('hook-1', 'rest-hook');
    const now = new Date();
    expect(await nextDueAt(db)).toBeDefined();
    const claimed = await claimDue(db, 'owner', now, new Date(now.getTime() + 10_000), 10);
    expect(claimed.map((s) => s.subscriptionId)).toEqual(['hook-1']);
  });

  it('schedules nothing for a websocket subscription alone (no busy loop on its heartbeat)', async () => {
    await db.query(`DELETE FROM subscription_state`);
    await state('ws-2', 'websocket');
    expect(await nextDueAt(db)).toBeUndefined();
  });

  it('still claims a websocket subscription whose end has passed (to turn it off)', async () => {
    await state('ws-3', 'websocket', { end: new Date(Date.now() - 1000) });
    const now = new Date();
    const claimed = await claimDue(db, 'owner', now, new Date(now.getTime() + 10_000), 10);
    expect(claimed.map((s) => s.subscriptionId)).toEqual(['ws-3']);
  });
});
