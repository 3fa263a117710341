/**
 * Lifecycle beyond the handshake: `off` stops counting and delivery; an `end` reached turns the
 * subscription off; a deleted subscription gets nothing more.
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

async function activeSubscription(receiver: Receiver, patient: string, extra: Partial<Subscription> = {}): Promise<Subscription> {
  const res = await e2e.fhir<Subscription>('Subscription', {
    method: 'POST',
    body: { ...restHookSubscription({ topic: ADMISSION, endpoint: receiver.url, filters: [`patient=${patient}`] }), ...extra },
  });
  expect(res.status).toBe(201);
  await receiver.until(1);
  return waitForSubscription(e2e.fhir, res.body.id!, (s) => s.status === 'active');
}

describe('subscription lifecycle', () => {
  it('off stops counting and delivering; requested again resumes with the next number', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await activeSubscription(receiver, 'Patient/life-1');
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/life-1') });
      await receiver.until(2);
      const off = await e2e.fhir<Subscription>(`Subscription/${sub.id}`, { method: 'PUT', body: { ...sub, status: 'off' } });
      expect(off.body.status).toBe('off');
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/life-1') });
      await e2e.clarion.subscriptions.eventsIdle();
      const st = statusOf((await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`)).body);
      expect(st.status).toBe('off');
      expect(st.eventsSince).toBe('1');
      expect(receiver.received.length).toBe(2);

      await e2e.fhir(`Subscription/${sub.id}`, { method: 'PUT', body: { ...off.body, status: 'requested' } });
      await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'active');
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/life-1') });
      const got = await receiver.until(4); // + handshake + event
      const last = statusOf(got[3]);
      expect(last.type).toBe('event-notification');
      expect(last.events[0].eventNumber).toBe('2');
    } finally {
      await receiver.close();
    }
  });

  it('turns off when its end is reached', async () => {
    const receiver = await startReceiver();
    try {
      const end = new Date(Date.now() + 1500).toISOString();
      const sub = await activeSubscription(receiver, 'Patient/life-2', { end });
      const offed = await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'off');
      expect(offed.status).toBe('off');
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/life-2') });
      await e2e.clarion.subscriptions.eventsIdle();
      expect(statusOf((await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`)).body).eventsSince).toBe('0');
    } finally {
      await receiver.close();
    }
  });

  it('a deleted subscription gets no more events and $status says it is gone', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await activeSubscription(receiver, 'Patient/life-3');
      expect((await e2e.fhir(`Subscription/${sub.id}`, { method: 'DELETE' })).status).toBe(204);
      await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/life-3') });
      await e2e.clarion.subscriptions.eventsIdle();
      expect(receiver.received.length).toBe(1);
      expect((await e2e.fhir(`Subscription/${sub.id}/$status`)).status).toBe(410);
    } finally {
      await receiver.close();
    }
  });
});
