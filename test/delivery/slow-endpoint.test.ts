/**
 * The delivery worker works on each claimed subscription independently: an endpoint that takes long
 * to answer holds only its own subscription (whose notifications must stay in order), never the
 * deliveries of others.
 */
import type { Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { admissionEncounter, restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E } from '../support/subscription-e2e.js';

let e2e: E2E;
let slow: Receiver;
beforeAll(async () => {
  e2e = await startE2E();
  slow = await startReceiver();
});
afterAll(async () => {
  await slow.close();
  await e2e.close();
});

async function subscribe(endpoint: string, patient: string, timeout?: number): Promise<Subscription> {
  const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: restHookSubscription({ endpoint, filters: [`patient=${patient}`], timeout }) });
  expect(res.status).toBe(201);
  return waitForSubscription(e2e.fhir, res.body.id!, (s) => s.status === 'active');
}

describe('a slow endpoint', () => {
  it('holds only its own subscription: others are delivered while it has not answered', async () => {
    // The slow endpoint answers handshakes at once and holds event notifications until released. Its
    // timeout (60 s) is above the server default (10 s): the worker extends its lease to wait that long.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const heldArrived = new Promise<void>((resolve) => (arrived = resolve));
    let held = 0;
    slow.respondWith(async (r) => {
      if (statusOf(r).type !== 'event-notification') return 200;
      held++;
      arrived();
      await released;
      return 200;
    });
    const a = await subscribe(slow.url, 'Patient/slow-a', 60);
    const b = await subscribe(e2e.receiver.url, 'Patient/slow-b');
    const before = e2e.receiver.received.length;

    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/slow-a') });
    await heldArrived;
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/slow-b') });
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/slow-b') });
    const got = await e2e.receiver.until(before + 2);

    // Both of b's events arrived while a's first notification was still unanswered (and not retried).
    expect(held).toBe(1);
    const mine = got.slice(before).map((r) => statusOf(r)).filter((s) => s.type === 'event-notification');
    expect(mine.flatMap((s) => s.events.map((e) => e.eventNumber))).toEqual(['1', '2']);
    expect(mine.every((s) => s.params.parameter?.find((p) => p.name === 'subscription')?.valueReference?.reference?.endsWith(`Subscription/${b.id}`))).toBe(true);

    release();
    const all = await slow.until(2); // handshake + the held notification
    const events = all.map((r) => statusOf(r)).filter((s) => s.type === 'event-notification');
    expect(events.map((s) => s.events.map((e) => e.eventNumber))).toEqual([['1']]);
    expect(held).toBe(1);
    expect(a.id).toBeDefined();
  });
});
