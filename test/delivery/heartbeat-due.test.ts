/**
 * Due heartbeats are found through their due time (migration 8): a period after the last notification
 * sent, or after the row was written when nothing was sent yet. The due time follows every send, every
 * failed attempt that counts as sent, and every change of the period; event counters do not move it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claimDue, nextDueAt, recordDelivered, recordFailure, releaseLease } from '../../src/delivery/delivery-queue.js';
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
const at = (iso: string) => new Date(iso);

async function dueOf(id: string): Promise<Date | null> {
  const { rows } = await db.query<{ heartbeat_due_at: Date | string | null }>('SELECT heartbeat_due_at FROM subscription_state WHERE subscription_id = $1', [id]);
  return rows[0].heartbeat_due_at === null ? null : new Date(rows[0].heartbeat_due_at);
}

describe('heartbeat due time', () => {
  it('follows sends, failures that count as sent and period changes, not event counters', async () => {
    await upsertSubscriptionState(db, { subscriptionId: 'hb', topicUrl: TOPIC, channelType: 'rest-hook', status: 'active', heartbeatPeriod: 60, subscriptionVersion: 1 }, new Date());
    const { rows } = await db.query<{ updated_at: Date | string }>("SELECT updated_at FROM subscription_state WHERE subscription_id = 'hb'");
    // Nothing sent yet: a period after the row was written.
    expect((await dueOf('hb'))!.getTime()).toBe(new Date(rows[0].updated_at).getTime() + 60_000);

    // A send: a period after it.
    const claimed = await claimDue(db, 'w', at('2100-01-01T00:00:00Z'), at('2100-01-01T00:01:00Z'), 10);
    expect(claimed.map((c) => c.subscriptionId)).toContain('hb');
    await recordDelivered(db, 'w', 'hb', { sentAt: at('2100-01-01T00:00:00Z'), leaseUntil: at('2100-01-01T00:01:00Z') });
    expect(await dueOf('hb')).toEqual(at('2100-01-01T00:01:00Z'));

    // Event counters move updated_at, not the due time.
    await db.query("UPDATE subscription_state SET events_since_start = events_since_start + 1, updated_at = now() WHERE subscription_id = 'hb'");
    expect(await dueOf('hb')).toEqual(at('2100-01-01T00:01:00Z'));

    // A failed heartbeat counts as sent (channel silence is measured from it).
    await recordFailure(db, 'w', 'hb', { code: 'no-response', message: 'x', at: at('2100-01-01T00:05:00Z'), attempts: 1, retryAt: null, countsAsSent: true });
    expect(await dueOf('hb')).toEqual(at('2100-01-01T00:06:00Z'));
    await releaseLease(db, 'w', 'hb');

    // A new version with another period: a period after the last send.
    await upsertSubscriptionState(db, { subscriptionId: 'hb', topicUrl: TOPIC, channelType: 'rest-hook', status: 'active', heartbeatPeriod: 600, subscriptionVersion: 2 }, new Date());
    expect(await dueOf('hb')).toEqual(at('2100-01-01T00:15:00Z'));

    // Without a period: no heartbeat, no due time.
    await upsertSubscriptionState(db, { subscriptionId: 'hb', topicUrl: TOPIC, channelType: 'rest-hook', status: 'active', subscriptionVersion: 3 }, new Date());
    expect(await dueOf('hb')).toBeNull();
  });

  it('is what the worker claims by and wakes up for', async () => {
    await upsertSubscriptionState(db, { subscriptionId: 'hb2', topicUrl: TOPIC, channelType: 'rest-hook', status: 'active', heartbeatPeriod: 60, subscriptionVersion: 1 }, new Date());
    // Due a period after it was written: claimed (far later), then sent.
    const first = await claimDue(db, 'w', at('2199-12-31T00:00:00Z'), at('2199-12-31T00:01:00Z'), 10);
    expect(first.map((c) => c.subscriptionId)).toContain('hb2');
    await recordDelivered(db, 'w', 'hb2', { sentAt: at('2200-01-01T00:00:00Z'), leaseUntil: at('2199-12-31T00:01:00Z') });
    for (const c of first) await releaseLease(db, 'w', c.subscriptionId);
    // Not due before its time, due at it.
    expect((await claimDue(db, 'w', at('2200-01-01T00:00:59Z'), at('2200-01-01T00:02:00Z'), 10)).map((c) => c.subscriptionId)).not.toContain('hb2');
    const due = await claimDue(db, 'w', at('2200-01-01T00:01:00Z'), at('2200-01-01T00:02:00Z'), 10);
    expect(due.map((c) => c.subscriptionId)).toContain('hb2');
    for (const c of due) await releaseLease(db, 'w', c.subscriptionId);
    expect(await nextDueAt(db)).not.toBeUndefined();
  });
});
