/**
 * Delivery under failure: a receiver that fails then recovers gets every event, in order, numbers
 * unchanged; a handshake that keeps failing turns the subscription `error` (visible in $status), and a
 * client PUT back to `requested` re-handshakes and resumes delivery from the first undelivered event.
 */
import type { Bundle, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { ADMISSION, restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E, admissionEncounter } from '../support/subscription-e2e.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => e2e.close());

async function subscribe(receiver: Receiver, patient: string): Promise<Subscription> {
  const res = await e2e.fhir<Subscription>('Subscription', {
    method: 'POST',
    body: restHookSubscription({ topic: ADMISSION, endpoint: receiver.url, filters: [`patient=${patient}`] }),
  });
  expect(res.status).toBe(201);
  return res.body;
}

describe('delivery retries', () => {
  it('keeps order and numbers when the receiver fails and recovers', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await subscribe(receiver, 'Patient/retry-1');
      await receiver.until(1); // handshake
      await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'active');
      // Fail the first two event deliveries, then accept.
      let failures = 0;
      receiver.respondWith((r) => (statusOf(r).type === 'event-notification' && failures++ < 2 ? 503 : 200));
      for (let i = 0; i < 5; i++) await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/retry-1') });
      const all = await receiver.until(1 + 2 + 5);
      const delivered = all.slice(1).map((r) => statusOf(r)).filter((s) => s.type === 'event-notification');
      const accepted = delivered.slice(2);
      expect(accepted.map((s) => s.events.map((e) => e.eventNumber)).flat()).toEqual(['1', '2', '3', '4', '5']);
      // The failed attempts were of event 1, retried unchanged.
      expect(delivered.slice(0, 2).map((s) => s.events[0].eventNumber)).toEqual(['1', '1']);
      const { body } = await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`);
      expect(statusOf(body).status).toBe('active');
      expect(statusOf(body).eventsSince).toBe('5');
    } finally {
      await receiver.close();
    }
  });

  it('turns error when the handshake keeps failing, and re-activates on a PUT back to requested', async () => {
    const receiver = await startReceiver();
    try {
      receiver.respondWith(500);
      const sub = await subscribe(receiver, 'Patient/retry-2');
      const errored = await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'error');
      expect(errored.error).toMatch(/handshake failed after 4 attempt\(s\).*HTTP 500/);
      expect(receiver.received.length).toBe(4);
      const { body } = await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`);
      const status = statusOf(body);
      expect(status.status).toBe('error');
      expect(JSON.stringify(status.params)).toContain('error-response');

      // The client fixes its endpoint and asks for re-activation.
      receiver.respondWith(200);
      const put = await e2e.fhir<Subscription>(`Subscription/${sub.id}`, { method: 'PUT', body: { ...errored, status: 'requested' } });
      expect(put.status).toBe(200);
      await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'active');
      const handshakes = receiver.received.filter((r) => statusOf(r).type === 'handshake');
      expect(handshakes.length).toBe(5);
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/retry-2') });
      const last = await receiver.until(6);
      expect(statusOf(last[5]).events[0].eventNumber).toBe('1');
    } finally {
      await receiver.close();
    }
  });

  it('counts events while in error and delivers the backlog in order after re-activation', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await subscribe(receiver, 'Patient/retry-3');
      await receiver.until(1);
      await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'active');
      receiver.respondWith(500);
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/retry-3') });
      const errored = await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'error');
      // More events while in error: counted, not delivered.
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/retry-3') });
      await e2e.clarion.subscriptions.eventsIdle();
      const st = statusOf((await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`)).body);
      expect(st.status).toBe('error');
      expect(st.eventsSince).toBe('2');
      const before = receiver.received.length;
      receiver.respondWith(200);
      await e2e.fhir(`Subscription/${sub.id}`, { method: 'PUT', body: { ...errored, status: 'requested' } });
      const got = await receiver.until(before + 3); // handshake + events 1 and 2
      const after = got.slice(before).map((r) => statusOf(r));
      expect(after.map((s) => s.type)).toEqual(['handshake', 'event-notification', 'event-notification']);
      expect(after.slice(1).map((s) => s.events[0].eventNumber)).toEqual(['1', '2']);
    } finally {
      await receiver.close();
    }
  });
});
