/**
 * The periodic retention task on a real server: it prunes with the configured policy (first run at
 * start, then every interval), never overlaps runs, survives a failed run, and stops cleanly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle } from 'fhir/r4.js';
import { installSubscriptionOperations, startEventRetention } from '../../src/server/subscription-operations.js';
import { EventLog, type PruneResult } from '../../src/subscriptions/event-log.js';
import { startRetentionTask } from '../../src/subscriptions/event-retention.js';
import { fhirClient, firstIssue, startTestServer, type TestServer } from '../support/server.js';
import { createSubscription, eventSeries, insertEvents, upsertState } from '../support/subscription-seed.js';
import { until } from '../support/until.js';

let server: TestServer;
const focus = { type: 'Encounter', id: 'e', version: 1 };

beforeAll(async () => {
  server = await startTestServer({ eventRetentionCount: 5, eventRetentionDays: 7 }, { background: false });
  installSubscriptionOperations(server.clarion);
});
afterAll(async () => server.close());

describe('startEventRetention', () => {
  it('prunes by count and age with config.subscriptions.eventRetention, then $events reports the window', async () => {
    const { store, db } = server.clarion;
    const now = new Date();
    await createSubscription(store, { id: 'many' });
    await upsertState(db, 'many', { status: 'active', eventsSinceStart: 12 });
    await insertEvents(db, 'many', eventSeries(1, 12, focus, now));
    await createSubscription(store, { id: 'old' });
    await upsertState(db, 'old', { status: 'active', eventsSinceStart: 3 });
    await insertEvents(db, 'old', eventSeries(1, 3, focus, now, 60 * 24 * 4)); // 8, 4 and 0 days old

    const task = startEventRetention(server.clarion, 60_000);
    const log = new EventLog(db);
    try {
      await until(async () => (await log.retentionBounds('many')).oldestRetained === 8 && (await log.retentionBounds('old')).oldestRetained === 2);
    } finally {
      await task.stop();
    }
    const fhir = fhirClient(server.baseUrl);
    const gone = await fhir('Subscription/many/$events?eventsSinceNumber=1&eventsUntilNumber=7');
    expect(gone.status).toBe(410);
    expect(firstIssue(gone.body).diagnostics).toContain('the oldest retained event is 8 (retention: the newest 5 events per subscription, none older than 7 days)');
    const kept = await fhir<Bundle>('Subscription/many/$events');
    expect(kept.status).toBe(200);
  });

  it('runs every interval without overlapping, reports failures and keeps going, and stops', async () => {
    let active = 0;
    let maxActive = 0;
    let calls = 0;
    const fakeLog = {
      async pruneEvents(): Promise<PruneResult> {
        calls++;
        active++;
        maxActive = Math.max(maxActive, active);
        await new Promise((r) => setTimeout(r, 15));
        active--;
        if (calls === 2) throw new Error('boom');
        return { deleted: 1, skipped: false };
      },
    } as unknown as EventLog;
    const errors: unknown[] = [];
    const pruned: PruneResult[] = [];
    const task = startRetentionTask(fakeLog, { intervalMs: 10, policy: { maxCount: 1, maxAgeDays: 1 }, onError: (e) => errors.push(e), onPruned: (r) => pruned.push(r) });
    // runNow queues behind a run in progress.
    const manual = task.runNow();
    await until(async () => calls >= 5);
    await expect(manual).resolves.toBeDefined();
    await task.stop();
    const after = calls;
    await new Promise((r) => setTimeout(r, 60));
    expect(calls).toBe(after);
    expect(maxActive).toBe(1);
    expect(errors).toHaveLength(1);
    expect(pruned.length).toBe(calls - 1);
    await expect(task.runNow()).rejects.toThrow('stopped');
  });

  it('refuses an interval out of bounds', () => {
    const log = new EventLog(server.clarion.db);
    const policy = { maxCount: 1, maxAgeDays: 1 };
    expect(() => startRetentionTask(log, { intervalMs: 0, policy })).toThrow(RangeError);
    expect(() => startRetentionTask(log, { intervalMs: 2 ** 31, policy })).toThrow(RangeError);
    expect(() => startRetentionTask(log, { intervalMs: 1.5, policy })).toThrow(RangeError);
  });
});
