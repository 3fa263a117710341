/**
 * Plain creates number their subscription events in the statement that stores them
 * (src/subscriptions/insert-time-events.ts), guarded by the matcher fence (migration 10): exactly once,
 * gap-free and in order whether the creates number their events or leave them to the event writer, and
 * a create never waits for a Subscription write in progress.
 */
import type { Encounter, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../src/subscriptions/event-log.js';
import { admissionEncounter, restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E } from '../support/subscription-e2e.js';
import { TEST_BACKEND } from '../support/test-db.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => e2e.close());

/** An active rest-hook subscription to the admission topic for `patient`, whose activation the event writer has applied. */
async function activeSubscription(patient: string): Promise<string> {
  const created = await e2e.fhir('Subscription', { method: 'POST', body: restHookSubscription({ endpoint: e2e.receiver.url, filters: [`patient=${patient}`], maxCount: 100 }) });
  const id = created.body.id as string;
  await waitForSubscription(e2e.fhir, id, (s) => s.status === 'active');
  await e2e.clarion.subscriptions.eventsIdle();
  return id;
}

async function createEncounters(patient: string, count: number): Promise<string[]> {
  const results = await Promise.all(Array.from({ length: count }, () => e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter(patient) })));
  for (const r of results) expect(r.status).toBe(201);
  return results.map((r) => r.body.id!);
}

async function numberedFlags(ids: string[]): Promise<boolean[]> {
  const { rows } = await e2e.clarion.db.query<{ id: string; events_numbered: boolean }>(
    `SELECT id, events_numbered FROM resource_history WHERE resource_type = 'Encounter' AND id = ANY($1::text[])`,
    [ids],
  );
  const byId = new Map(rows.map((r) => [r.id, r.events_numbered]));
  return ids.map((id) => byId.get(id)!);
}

/** The events the receiver got for `subscriptionId`, as [event number, focus id], in arrival order. */
function receivedEvents(subscriptionId: string): [number, string][] {
  return e2e.receiver.received
    .map((r) => statusOf(r))
    .filter((s) => s.type === 'event-notification' && s.params.parameter?.some((p) => p.valueReference?.reference?.endsWith(`Subscription/${subscriptionId}`)))
    .flatMap((s) => s.events.map((e) => [Number(e.eventNumber), e.focus!.split('/').pop()!] as [number, string]));
}

async function waitForEvents(subscriptionId: string, count: number): Promise<[number, string][]> {
  for (;;) {
    const events = receivedEvents(subscriptionId);
    if (events.length >= count) return events;
    await e2e.receiver.until(e2e.receiver.received.length + 1);
  }
}

describe('events numbered with their creates', () => {
  it('numbers each matching create once, in the statement that stores it, and the event writer adds none', async () => {
    const id = await activeSubscription('Patient/ite-1');
    const matching = await createEncounters('Patient/ite-1', 30);
    const other = await createEncounters('Patient/ite-other', 5);
    expect(await numberedFlags([...matching, ...other])).toEqual(new Array(35).fill(true));

    const events = await waitForEvents(id, 30);
    expect(events.map((e) => e[0])).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(new Set(events.map((e) => e[1]))).toEqual(new Set(matching));
    await e2e.clarion.subscriptions.eventsIdle();
    const [state] = await new EventLog(e2e.clarion.db).getState([id]);
    expect(state.eventsSinceStart).toBe(30);
    const logged = await new EventLog(e2e.clarion.db).listEvents(id, 1, 1000, 1000);
    expect(logged.map((e) => e.eventNumber)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // Numbered in change order: event numbers follow the change records' sequence numbers.
    const { rows } = await e2e.clarion.db.query<{ event_number: string | number; change_seq: string | number }>(
      'SELECT event_number, change_seq FROM subscription_events WHERE subscription_id = $1 ORDER BY event_number', [id]);
    const seqs = rows.map((r) => Number(r.change_seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
  });

  it('hands the mark to readers of the change feed (another process, or this one after a restart)', async () => {
    const [encounter] = await createEncounters('Patient/ite-feed', 1);
    const { changes } = await e2e.clarion.feed.readWithHorizon(0, 100_000);
    const change = changes.find((c) => c.resourceType === 'Encounter' && c.id === encounter);
    expect(change?.eventsNumbered).toBe(true);
    const subscription = changes.find((c) => c.resourceType === 'Subscription');
    expect(subscription?.eventsNumbered).toBeUndefined();
  });

  it('records the sequence number of every Subscription change in the fence, and of no other change', async () => {
    const fence = async () => Number((await e2e.clarion.db.query<{ last_seq: string }>('SELECT last_seq FROM matcher_fence')).rows[0].last_seq);
    await createEncounters('Patient/ite-fence', 1);
    const before = await fence();
    // Off: no handshake follows, which would change the subscription (and the fence) again.
    const created = await e2e.fhir('Subscription', { method: 'POST', body: { ...restHookSubscription({ endpoint: e2e.receiver.url, filters: ['patient=Patient/ite-fence-2'] }), status: 'off' } });
    expect(created.status).toBe(201);
    const { rows } = await e2e.clarion.db.query<{ seq: string }>(
      `SELECT max(seq) AS seq FROM resource_history WHERE resource_type = 'Subscription' AND id = $1`, [created.body.id]);
    expect(before).toBeLessThan(Number(rows[0].seq));
    expect(await fence()).toBe(Number(rows[0].seq));
    const afterSubscription = await fence();
    await createEncounters('Patient/ite-fence', 3);
    expect(await fence()).toBe(afterSubscription);
  });

  it('writes the fence once per transaction, with its highest number: 600 Subscriptions in one transaction leave it one page', async () => {
    const ids: string[] = [];
    await e2e.clarion.store.transaction(async (s) => {
      for (let i = 0; i < 600; i++) {
        // Off: no handshake follows, which would write each subscription (and the fence) again.
        const stored = await s.create({ ...restHookSubscription({ endpoint: e2e.receiver.url, filters: [`patient=Patient/ite-bulk-${i}`] }), status: 'off' } as Subscription);
        ids.push(stored.resource.id!);
      }
    });
    const { rows } = await e2e.clarion.db.query<{ last_seq: string; top: string; size: string }>(
      `SELECT f.last_seq, (SELECT max(seq) FROM resource_history WHERE resource_type = 'Subscription' AND id = ANY($1::text[])) AS top,
              pg_relation_size('matcher_fence') AS size FROM matcher_fence f`, [ids]);
    expect(Number(rows[0].last_seq)).toBe(Number(rows[0].top));
    // One version per Subscription (migration 10) filled four pages here, and every gate scanned them all.
    expect(Number(rows[0].size)).toBe(8192);
  });

  it.runIf(TEST_BACKEND === 'pg')('does not wait for a Subscription write in progress: its creates go to the event writer, numbered after the earlier ones', async () => {
    const id = await activeSubscription('Patient/ite-2');
    const first = await createEncounters('Patient/ite-2', 5);
    await waitForEvents(id, 5);
    let during: string[] = [];
    await e2e.clarion.store.transaction(async (s) => {
      // The fence is locked from here until this transaction ends.
      await s.create(restHookSubscription({ endpoint: e2e.receiver.url, filters: ['patient=Patient/ite-2-pending'] }));
      during = await createEncounters('Patient/ite-2', 5);
    });
    expect(await numberedFlags(first)).toEqual(new Array(5).fill(true));
    expect(await numberedFlags(during)).toEqual(new Array(5).fill(false));

    const events = await waitForEvents(id, 10);
    expect(events.map((e) => e[0])).toEqual(Array.from({ length: 10 }, (_, i) => i + 1));
    expect(new Set(events.slice(5).map((e) => e[1]))).toEqual(new Set(during));
    await e2e.clarion.subscriptions.eventsIdle();
    const [state] = await new EventLog(e2e.clarion.db).getState([id]);
    expect(state.eventsSinceStart).toBe(10);
  });
});
