/**
 * A user's whole journey over rest-hook: discover topics → create → handshake → active → write an
 * Encounter → event-notification → $status → $events, with every notification validated against the
 * IG profiles.
 */
import type { Bundle, CapabilityStatement, Encounter, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4NotificationErrors, r4StatusSearchsetErrors } from '../support/ig-validator.js';
import { ADMISSION, restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E } from '../support/subscription-e2e.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => e2e.close());

const encounter = (patient: string, status: Encounter['status']): Encounter => ({
  resourceType: 'Encounter',
  status,
  class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
  subject: { reference: patient },
});

describe('rest-hook end to end', () => {
  let sub: Subscription;

  it('lists the built-in topics in the CapabilityStatement', async () => {
    const { body } = await e2e.fhir<CapabilityStatement>('metadata');
    const entry = body.rest?.[0].resource?.find((r) => r.type === 'Subscription');
    const topics = (entry?.extension ?? []).map((x) => x.valueCanonical);
    expect(topics).toContain(ADMISSION);
  });

  it('creates a Subscription: 201, status requested, header echoed to its owner', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', {
      method: 'POST',
      body: restHookSubscription({ endpoint: e2e.receiver.url, filters: ['Encounter?patient=Patient/p1'], headers: ['Authorization: Bearer e2e-secret'] }),
    });
    expect(res.status).toBe(201);
    expect(res.body.status).toBe('requested');
    expect(res.body.channel.header).toEqual(['Authorization: Bearer e2e-secret']);
    sub = res.body;
  });

  it('sends the handshake after the 201, then turns active', async () => {
    const [hs] = await e2e.receiver.until(1);
    expect(hs.headers['content-type']).toBe('application/fhir+json');
    expect(hs.headers.authorization).toBe('Bearer e2e-secret');
    const s = statusOf(hs);
    expect(s.type).toBe('handshake');
    expect(s.eventsSince).toBe('0');
    expect(r4NotificationErrors(s.bundle)).toEqual([]);
    const active = await waitForSubscription(e2e.fhir, sub.id!, (x) => x.status === 'active');
    expect(active.status).toBe('active');
  });

  it('notifies a matching Encounter and not a non-matching one', async () => {
    await e2e.fhir('Encounter', { method: 'POST', body: encounter('Patient/other', 'in-progress') });
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: encounter('Patient/p1', 'in-progress') });
    const received = await e2e.receiver.until(2);
    const s = statusOf(received[1]);
    expect(s.type).toBe('event-notification');
    expect(s.eventsSince).toBe('1');
    expect(s.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
    expect(r4NotificationErrors(s.bundle)).toEqual([]);
    expect(s.bundle.entry?.[0].request?.url).toBe(`${e2e.baseUrl}/Subscription/${sub.id}/$status`);
  });

  it('answers $status with a searchset of query-status', async () => {
    const { status, body } = await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`);
    expect(status).toBe(200);
    expect(body.type).toBe('searchset');
    expect(r4StatusSearchsetErrors(body)).toEqual([]);
    const s = statusOf(body);
    expect(s.type).toBe('query-status');
    expect(s.status).toBe('active');
    expect(s.eventsSince).toBe('1');
  });

  it('answers $events with the stored event', async () => {
    const { status, body } = await e2e.fhir<Bundle>(`Subscription/${sub.id}/$events?eventsSinceNumber=1&eventsUntilNumber=1`);
    expect(status).toBe(200);
    expect(body.type).toBe('history');
    expect(r4NotificationErrors(body)).toEqual([]);
    const s = statusOf(body);
    expect(s.type).toBe('query-event');
    expect(s.events.map((e) => e.eventNumber)).toEqual(['1']);
  });
});
