/**
 * What a notification carries per content level, heartbeats, and maxCount batching — every bundle
 * validated against the IG profiles.
 */
import type { Encounter, Patient, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4NotificationErrors } from '../support/ig-validator.js';
import { startReceiver, type Receiver } from '../support/receiver.js';
import { ADMISSION, ENCOUNTER_COMPLETE, restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E, type SubscriptionOptions } from '../support/subscription-e2e.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => e2e.close());

async function activeSubscription(o: Omit<SubscriptionOptions, 'endpoint'>, receiver: Receiver): Promise<Subscription> {
  const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: restHookSubscription({ ...o, endpoint: receiver.url }) });
  expect(res.status).toBe(201);
  await receiver.until(1);
  return waitForSubscription(e2e.fhir, res.body.id!, (s) => s.status === 'active');
}

async function admit(patientId: string): Promise<Encounter> {
  const { body } = await e2e.fhir<Encounter>('Encounter', {
    method: 'POST',
    body: { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP', system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode' }, subject: { reference: `Patient/${patientId}` } },
  });
  return body;
}

describe('notification content', () => {
  it.each(['empty', 'id-only', 'full-resource'] as const)('%s: entries and focus as the IG requires', async (content) => {
    const receiver = await startReceiver();
    try {
      const { body: patient } = await e2e.fhir<Patient>('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: content }] } });
      await activeSubscription({ topic: ADMISSION, content, filters: [`patient=Patient/${patient.id}`] }, receiver);
      const enc = await admit(patient.id!);
      const [, r] = await receiver.until(2);
      const s = statusOf(r);
      expect(r4NotificationErrors(s.bundle)).toEqual([]);
      const entries = s.bundle.entry!.slice(1);
      if (content === 'empty') {
        expect(entries).toEqual([]);
        expect(s.events[0].focus).toBeUndefined();
      } else {
        expect(s.events[0].focus).toBe(`${e2e.baseUrl}/Encounter/${enc.id}`);
        const focusEntry = entries.find((e) => e.fullUrl === `${e2e.baseUrl}/Encounter/${enc.id}`);
        expect(focusEntry?.request).toEqual({ method: 'POST', url: 'Encounter' });
        if (content === 'full-resource') expect((focusEntry?.resource as Encounter).id).toBe(enc.id);
        else expect(focusEntry?.resource).toBeUndefined();
      }
    } finally {
      await receiver.close();
    }
  });

  it('carries additional context from the topic shape: include (patient) and revInclude (observations)', async () => {
    const receiver = await startReceiver();
    try {
      const { body: patient } = await e2e.fhir<Patient>('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family: 'Context' }] } });
      await activeSubscription({ topic: ENCOUNTER_COMPLETE, content: 'full-resource', filters: [`patient=Patient/${patient.id}`] }, receiver);
      const enc = await admit(patient.id!);
      const { body: obs } = await e2e.fhir<{ id: string }>('Observation', {
        method: 'POST',
        body: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: `Patient/${patient.id}` }, encounter: { reference: `Encounter/${enc.id}` } },
      });
      await e2e.fhir(`Encounter/${enc.id}`, { method: 'PUT', body: { ...enc, status: 'finished' } });
      const [, r] = await receiver.until(2);
      const s = statusOf(r);
      expect(r4NotificationErrors(s.bundle)).toEqual([]);
      const event = (s.params.parameter ?? []).find((p) => p.name === 'notification-event');
      const context = (event?.part ?? []).filter((p) => p.name === 'additional-context').map((p) => p.valueReference?.reference);
      expect(context).toEqual(expect.arrayContaining([`${e2e.baseUrl}/Patient/${patient.id}`, `${e2e.baseUrl}/Observation/${obs.id}`]));
      const included = s.bundle.entry!.slice(1).map((e) => e.resource?.resourceType);
      expect(included).toEqual(expect.arrayContaining(['Encounter', 'Patient', 'Observation']));
    } finally {
      await receiver.close();
    }
  });

  it('batches up to maxCount events per notification, in order', async () => {
    const receiver = await startReceiver();
    try {
      const sub = await activeSubscription({ topic: ADMISSION, maxCount: 3, filters: ['patient=Patient/batch'] }, receiver);
      // Hold deliveries while events pile up, so that batches form.
      let release!: () => void;
      const gate = new Promise<number>((r) => (release = () => r(200)));
      receiver.respondWith(() => gate);
      for (let i = 0; i < 7; i++) await admit('batch');
      await e2e.clarion.subscriptions.eventsIdle();
      release();
      receiver.respondWith(200);
      const all: string[] = [];
      let got = 1;
      while (all.length < 7) {
        const received = await receiver.until(++got);
        const s = statusOf(received[got - 1]);
        expect(s.events.length).toBeLessThanOrEqual(3);
        expect(s.eventsSince).toBe(s.events[s.events.length - 1].eventNumber);
        all.push(...s.events.map((e) => e.eventNumber));
      }
      expect(all).toEqual(['1', '2', '3', '4', '5', '6', '7']);
      expect(sub.status).toBe('active');
    } finally {
      await receiver.close();
    }
  });

  it('sends a heartbeat after heartbeatPeriod seconds of channel silence', async () => {
    const receiver = await startReceiver();
    try {
      await activeSubscription({ topic: ADMISSION, heartbeatPeriod: 1, filters: ['patient=Patient/quiet'] }, receiver);
      const received = await receiver.until(2);
      const hb = statusOf(received[1]);
      expect(hb.type).toBe('heartbeat');
      expect(hb.eventsSince).toBe('0');
      expect(r4NotificationErrors(hb.bundle)).toEqual([]);
      expect(received[1].at - received[0].at).toBeGreaterThanOrEqual(900);
    } finally {
      await receiver.close();
    }
  });
});
