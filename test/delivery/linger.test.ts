/**
 * A caught-up delivery job keeps its subscription for a while (`--delivery-linger`), so a steady stream
 * of events goes out without a claim per notification. Lingering must never hold up other work: a job
 * lingers only while a slot is free, and when every slot is taken and more work waits, lingering jobs
 * give their slots up; the subscription is claimed again for its next events.
 */
import type { Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { admissionEncounter, restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E } from '../support/subscription-e2e.js';

let e2e: E2E;
let held: Receiver;
beforeAll(async () => {
  // Two slots, and a linger (the longest allowed) longer than the first test may take: only giving the
  // slot up lets other work through in time.
  e2e = await startE2E({ deliveryConcurrency: 2, deliveryLinger: 60_000 });
  held = await startReceiver();
});
afterAll(async () => {
  // Also shows that stopping does not wait for a lingering job.
  await e2e.close();
  await held.close();
});

async function subscribe(patient: string, endpoint = e2e.receiver.url, timeout?: number): Promise<Subscription> {
  const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: restHookSubscription({ endpoint, filters: [`patient=${patient}`], timeout }) });
  expect(res.status).toBe(201);
  return waitForSubscription(e2e.fhir, res.body.id!, (s) => s.status === 'active');
}

/** The next event notification the receiver gets, as [subscription id, event numbers]. */
async function nextEvent(): Promise<[string, string[]]> {
  const start = e2e.receiver.received.length;
  for (let n = start + 1; ; n++) {
    const got = await e2e.receiver.until(n);
    const s = statusOf(got[n - 1]);
    if (s.type !== 'event-notification') continue;
    const ref = s.params.parameter?.find((p) => p.name === 'subscription')?.valueReference?.reference ?? '';
    return [ref.slice(ref.lastIndexOf('/') + 1), s.events.map((e) => e.eventNumber)];
  }
}

describe('a lingering delivery job', () => {
  it('gives its slot up when every slot is taken and another subscription has events', async () => {
    // b's endpoint holds event notifications until released (its timeout, 60 s, outlasts the test), so
    // b's job keeps the second slot.
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    let arrived!: () => void;
    const heldArrived = new Promise<void>((resolve) => (arrived = resolve));
    held.respondWith(async (r) => {
      if (statusOf(r).type !== 'event-notification') return 200;
      arrived();
      await released;
      return 200;
    });
    const a = await subscribe('Patient/linger-a');
    const b = await subscribe('Patient/linger-b', held.url, 60);
    const c = await subscribe('Patient/linger-c');

    let next = nextEvent();
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/linger-a') });
    expect(await next).toEqual([a.id, ['1']]);
    // a's job lingers in one slot; b's job takes the other and waits for its endpoint.
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/linger-b') });
    await heldArrived;

    // Both slots are taken: c's event goes out only if a's lingering job gives its slot up.
    next = nextEvent();
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/linger-c') });
    expect(await next).toEqual([c.id, ['1']]);

    // a is claimed again for its next event; b's notification goes out once its endpoint answers.
    next = nextEvent();
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/linger-a') });
    expect(await next).toEqual([a.id, ['2']]);
    release();
    const got = await held.until(2); // handshake + the held notification
    expect(statusOf(got[1]).events.map((e) => e.eventNumber)).toEqual(['1']);
    expect(b.id).toBeDefined();
  }, 30_000);

  it('sends a stream of events in order while it keeps the subscription', async () => {
    const d = await subscribe('Patient/linger-d');
    const before = e2e.receiver.received.length;
    for (let i = 0; i < 10; i++) await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/linger-d') });
    const numbers: string[] = [];
    for (let n = before + 1; numbers.length < 10; n++) {
      const s = statusOf((await e2e.receiver.until(n))[n - 1]);
      if (s.type === 'event-notification' && s.params.parameter?.some((p) => p.valueReference?.reference?.endsWith(`Subscription/${d.id}`))) numbers.push(...s.events.map((e) => e.eventNumber));
    }
    expect(numbers).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10']);
  });
});
