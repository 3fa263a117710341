/**
 * Recording delivery progress: the statement commits without waiting for its WAL flush (its own
 * transaction only), so the connection it ran on — reused by the pool for every other statement —
 * keeps synchronous commits.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimDue, recordDelivered } from '../../src/delivery/delivery-queue.js';
import type { Db } from '../../src/store/db.js';
import { upsertSubscriptionState } from '../../src/subscriptions/subscription-state.js';
import { openTestDb } from '../support/test-db.js';

let db: Db;
let cleanup: () => Promise<void>;
beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
});
afterAll(async () => {
  await cleanup();
});

const TOPIC = 'http://hl7.org/SubscriptionTopic/admission';

describe('recording delivery progress', () => {
  it('records progress and releases the lease, and leaves synchronous commits on for what follows', async () => {
    await upsertSubscriptionState(db, { subscriptionId: 'p1', topicUrl: TOPIC, channelType: 'rest-hook', status: 'active', subscriptionVersion: 1 }, new Date());
    await db.query("UPDATE subscription_state SET events_since_start = 3 WHERE subscription_id = 'p1'");
    const now = new Date();
    const claimed = await claimDue(db, 'w', now, new Date(now.getTime() + 60_000), 10);
    expect(claimed.map((c) => c.subscriptionId)).toContain('p1');

    const partly = await recordDelivered(db, 'w', 'p1', { deliveredThrough: 2, sentAt: now, leaseUntil: new Date(now.getTime() + 60_000), releaseIfCaughtUp: true });
    expect(partly).toEqual({ eventsSinceStart: 3, released: false });
    const all = await recordDelivered(db, 'w', 'p1', { deliveredThrough: 3, sentAt: now, leaseUntil: new Date(now.getTime() + 60_000), releaseIfCaughtUp: true });
    expect(all).toEqual({ eventsSinceStart: 3, released: true });
    const { rows } = await db.query<{ delivered_through: string | number; lease_owner: string | null }>(
      "SELECT delivered_through, lease_owner FROM subscription_state WHERE subscription_id = 'p1'",
    );
    expect(Number(rows[0].delivered_through)).toBe(3);
    expect(rows[0].lease_owner).toBeNull();
    // No longer this worker's: nothing recorded.
    expect(await recordDelivered(db, 'w', 'p1', { deliveredThrough: 3, sentAt: now, leaseUntil: now })).toBeUndefined();

    // Progress statements that record (8 at once, so over several connections), then every connection
    // of both pools — progress runs on the plan-reusing one — still commits synchronously.
    for (let i = 0; i < 4; i++) {
      await db.query("UPDATE subscription_state SET lease_owner = 'w' WHERE subscription_id = 'p1'");
      const recorded = await Promise.all(
        Array.from({ length: 8 }, () => recordDelivered(db, 'w', 'p1', { deliveredThrough: 3, sentAt: now, leaseUntil: new Date(now.getTime() + 60_000) })),
      );
      expect(recorded.every((r) => r?.eventsSinceStart === 3)).toBe(true);
      for (const reusePlan of [true, false]) {
        const setting = await Promise.all(Array.from({ length: 8 }, () => db.query<{ synchronous_commit: string }>('SHOW synchronous_commit', [], { reusePlan })));
        expect(setting.map((r) => r.rows[0].synchronous_commit)).toEqual(Array(8).fill('on'));
      }
    }
  });
});
