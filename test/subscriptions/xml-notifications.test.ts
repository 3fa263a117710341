/**
 * Subscriptions whose channel.payload is application/fhir+xml: rest-hook notifications (handshake and
 * events, R4 backport and R4B) arrive as FHIR XML that converts back to the JSON bundle, valid against
 * the IG profiles; a Subscription can itself be written and read in XML; $events answers in XML.
 */
import type { Bundle, Encounter, Parameters, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceToXml, xmlToResource } from '../../src/fhir/xml/fhir-xml.js';
import { serializeNotificationBundle } from '../../src/versions/notification-renderer.js';
import type { Received } from '../support/receiver.js';
import { r4NotificationErrors } from '../support/ig-validator.js';
import { restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E, admissionEncounter } from '../support/subscription-e2e.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => e2e.close());

/** The notifications the receiver got for one subscription (the header names it), in arrival order. */
async function receivedFor(subscriptionId: string, count: number): Promise<Received[]> {
  for (let total = 1; ; total++) {
    const all = await e2e.receiver.until(total);
    const mine = all.filter((r) => r.body.includes(`Subscription/${subscriptionId}`));
    if (mine.length >= count) return mine.slice(0, count);
  }
}

function bundleOf(r: Received): Bundle {
  expect(r.headers['content-type']).toBe('application/fhir+xml');
  expect(r.body.startsWith('<?xml version="1.0" encoding="UTF-8"?><Bundle xmlns="http://hl7.org/fhir">')).toBe(true);
  return xmlToResource(r.body) as Bundle;
}

describe('rest-hook with payload application/fhir+xml (R4 backport)', () => {
  let sub: Subscription;

  it('is accepted at create', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', {
      method: 'POST',
      body: restHookSubscription({ endpoint: e2e.receiver.url, payload: 'application/fhir+xml', content: 'full-resource', filters: ['Encounter?patient=Patient/x1'] }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.channel.payload).toBe('application/fhir+xml');
    sub = res.body;
  });

  it('sends the handshake in XML, a valid backport notification once converted back', async () => {
    const [handshake] = await receivedFor(sub.id!, 1);
    const bundle = bundleOf(handshake);
    expect(r4NotificationErrors(bundle)).toEqual([]);
    expect(statusOf(bundle)).toMatchObject({ type: 'handshake', eventsSince: '0' });
    await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'active');
  });

  it('sends event notifications with the full resource in XML, identical to the stored resource', async () => {
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/x1') });
    const [, event] = await receivedFor(sub.id!, 2);
    const bundle = bundleOf(event);
    expect(r4NotificationErrors(bundle)).toEqual([]);
    const s = statusOf(bundle);
    expect(s).toMatchObject({ type: 'event-notification', eventsSince: '1' });
    expect(s.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
    expect(bundle.entry?.[1].resource).toEqual(enc);
    // The same bundle as the JSON rendering, through $events (the event log keeps what was sent).
    const events = await e2e.fhir<Bundle>(`Subscription/${sub.id}/$events?eventsSinceNumber=1&eventsUntilNumber=1`);
    expect(bundle.entry?.slice(1)).toEqual(events.body.entry?.slice(1));
  });

  it('answers $events in XML when asked', async () => {
    const res = await e2e.fhir(`Subscription/${sub.id}/$events?_format=xml`);
    expect(res.headers.get('content-type')).toBe('application/fhir+xml; charset=utf-8');
    const bundle = xmlToResource(res.text) as Bundle;
    expect(r4NotificationErrors(bundle)).toEqual([]);
    expect(statusOf(bundle).type).toBe('query-event');
  });
});

describe('R4B notifications in XML (SubscriptionStatus)', () => {
  it('sends an R4B handshake and event as XML SubscriptionStatus bundles', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', {
      method: 'POST',
      body: restHookSubscription({ endpoint: e2e.receiver.url, payload: 'application/fhir+xml; fhirVersion=4.3', content: 'id-only', filters: ['Encounter?patient=Patient/x2'] }),
    });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    const id = res.body.id!;
    await waitForSubscription(e2e.fhir, id, (s) => s.status === 'active');
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/x2') });
    const [handshake, event] = await receivedFor(id, 2);
    expect(handshake.body).toContain('<SubscriptionStatus><id value=');
    expect(bundleOf(handshake).entry?.[0].resource).toMatchObject({ resourceType: 'SubscriptionStatus', type: 'handshake', eventsSinceSubscriptionStart: '0' });
    const bundle = bundleOf(event);
    expect(bundle.meta?.profile).toEqual(['http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification']);
    expect(bundle.entry?.[0].resource).toMatchObject({
      resourceType: 'SubscriptionStatus',
      type: 'event-notification',
      eventsSinceSubscriptionStart: '1',
      notificationEvent: [{ eventNumber: '1', focus: { reference: `${e2e.baseUrl}/Encounter/${enc.id}` } }],
    });
    expect(bundle.entry?.[1]).toMatchObject({ fullUrl: `${e2e.baseUrl}/Encounter/${enc.id}` });
    expect(bundle.entry?.[1].resource).toBeUndefined();
  });
});

describe('a Subscription written and read in XML', () => {
  it('keeps the primitive extensions (filter criteria, payload content) and notifies in JSON when asked', async () => {
    const json = restHookSubscription({ endpoint: e2e.receiver.url, content: 'id-only', filters: ['Encounter?patient=Patient/x3'], heartbeatPeriod: 3600 });
    const res = await e2e.fhir('Subscription', { method: 'POST', body: resourceToXml(json), headers: { 'content-type': 'application/fhir+xml', accept: 'application/fhir+xml' } });
    expect(res.status, res.text).toBe(201);
    expect(res.text).toContain('<criteria value="http://hl7.org/SubscriptionTopic/admission"><extension url="http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-filter-criteria"><valueString value="Encounter?patient=Patient/x3"/></extension></criteria>');
    const created = xmlToResource(res.text) as Subscription;
    expect(created._criteria).toEqual(json._criteria);
    expect(created.channel).toMatchObject({ payload: 'application/fhir+json', _payload: json.channel._payload, extension: json.channel.extension });
    const [handshake] = await receivedFor(created.id!, 1);
    expect(handshake.headers['content-type']).toBe('application/fhir+json');
    expect(statusOf(handshake).type).toBe('handshake');
  });
});

describe('serializeNotificationBundle (for channels that attach the bundle)', () => {
  const bundle: Bundle = { resourceType: 'Bundle', type: 'history', entry: [{ resource: { resourceType: 'Parameters', parameter: [{ name: 'type', valueCode: 'heartbeat' }] } as Parameters }] };

  it('writes XML for XML payload types and for an email attach=application/fhir+xml, JSON otherwise', () => {
    for (const type of ['application/fhir+xml', 'application/fhir+xml; fhirVersion=4.3', 'text/plain; attach=application/fhir+xml', 'text/html; attach="application/fhir+xml"']) {
      const body = serializeNotificationBundle(bundle, type);
      expect(xmlToResource(body), type).toEqual(bundle);
    }
    for (const type of ['application/fhir+json', 'text/plain; attach=application/fhir+json', 'text/plain']) {
      expect(JSON.parse(serializeNotificationBundle(bundle, type)), type).toEqual(bundle);
    }
  });
});
