/**
 * FHIR messaging end to end against a real HTTP receiver: create a `message` Subscription (requested),
 * receive the handshake as a message Bundle at [endpoint]/$process-message, turn active, then event
 * notifications — each a message Bundle whose MessageHeader comes first and whose second entry is the
 * IG notification bundle. A failing receiver turns the subscription `error`. Also: what is refused at
 * create, including email on a server without SMTP.
 */
import type { Bundle, Encounter, MessageHeader, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4NotificationErrors } from '../support/ig-validator.js';
import { startReceiver, type Received } from '../support/receiver.js';
import { firstIssue } from '../support/server.js';
import { restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E, admissionEncounter } from '../support/subscription-e2e.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => e2e?.close());

function messageSubscription(endpoint: string, patient: string, channel: Record<string, unknown> = {}): Subscription {
  const base = restHookSubscription({ endpoint, filters: [`Encounter?patient=${patient}`], headers: ['Authorization: Bearer m2m-token'] });
  return { ...base, channel: { ...base.channel, type: 'message', ...channel } };
}

/** The message Bundle of a request, checked for shape; returns its header and notification. */
function openMessage(r: Received): { header: MessageHeader; notification: Bundle } {
  expect(r.method).toBe('POST');
  expect(r.url).toBe('/hook/$process-message');
  expect(r.headers['content-type']).toBe('application/fhir+json');
  expect(r.headers.authorization).toBe('Bearer m2m-token');
  const message = JSON.parse(r.body) as Bundle;
  expect(message.resourceType).toBe('Bundle');
  expect(message.type).toBe('message');
  expect(message.entry).toHaveLength(2);
  const header = message.entry?.[0]?.resource as MessageHeader;
  expect(header.resourceType).toBe('MessageHeader');
  expect(header.source.endpoint).toBe(e2e.baseUrl);
  expect(header.destination?.[0]?.endpoint).toBe(e2e.receiver.url);
  expect(header.focus?.[0]?.reference).toBe(message.entry?.[1]?.fullUrl);
  const notification = message.entry?.[1]?.resource as Bundle;
  expect(r4NotificationErrors(notification)).toEqual([]);
  return { header, notification };
}

describe('message end to end', () => {
  let sub: Subscription;

  it('creates a message Subscription: 201, requested', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: messageSubscription(e2e.receiver.url, 'Patient/msg-1') });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.status).toBe('requested');
    sub = res.body;
  });

  it('sends the handshake as a message, then turns active', async () => {
    const [first] = await e2e.receiver.until(1);
    const { header, notification } = openMessage(first);
    expect(header.eventCoding?.code).toBe('handshake');
    const s = statusOf(notification);
    expect(s.type).toBe('handshake');
    expect(s.eventsSince).toBe('0');
    await waitForSubscription(e2e.fhir, sub.id!, (x) => x.status === 'active');
  });

  it('sends each event notification as a message', async () => {
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/msg-1') });
    const received = await e2e.receiver.until(2);
    const { header, notification } = openMessage(received[1]);
    expect(header.eventCoding).toEqual({ system: 'http://hl7.org/fhir/subscription-notification-type', code: 'event-notification' });
    const s = statusOf(notification);
    expect(s.type).toBe('event-notification');
    expect(s.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
  });

  it('turns error when the handshake message keeps failing', async () => {
    const failing = await startReceiver();
    try {
      failing.respondWith(500);
      const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: messageSubscription(failing.url, 'Patient/msg-2') });
      expect(res.status).toBe(201);
      const errored = await waitForSubscription(e2e.fhir, res.body.id!, (x) => x.status === 'error');
      expect(errored.error).toMatch(/handshake failed after 4 attempt\(s\).*HTTP 500/);
      expect(failing.received.map((r) => r.url)).toEqual(Array(4).fill('/hook/$process-message'));
    } finally {
      await failing.close();
    }
  });

  it.each([
    ['without endpoint', { endpoint: undefined }, 'CLARION_SUBSCRIPTION_ENDPOINT', /needs channel.endpoint: the base URL of the FHIR server/],
    ['to a private address not allowed', { endpoint: 'http://10.1.2.3/fhir' }, 'CLARION_SUBSCRIPTION_ENDPOINT', /loopback, private/],
    ['with an XML payload', { payload: 'application/fhir+xml' }, 'CLARION_SUBSCRIPTION_PAYLOAD', /FHIR messages are sent as JSON Bundles/],
  ])('refuses a message Subscription %s (422)', async (_label, channel, code, why) => {
    const res = await e2e.fhir('Subscription', { method: 'POST', body: messageSubscription(e2e.receiver.url, 'Patient/msg-3', channel) });
    expect(res.status).toBe(422);
    expect(firstIssue(res.body)).toMatchObject({ clarionCode: code, diagnostics: expect.stringMatching(why) });
  });

  it('refuses email on a server without SMTP configuration', async () => {
    const base = restHookSubscription({ endpoint: 'mailto:a@example.org', payload: 'text/plain' });
    const res = await e2e.fhir('Subscription', { method: 'POST', body: { ...base, channel: { ...base.channel, type: 'email' } } });
    expect(res.status).toBe(422);
    expect(firstIssue(res.body)).toMatchObject({ clarionCode: 'CLARION_SUBSCRIPTION_CHANNEL', expression: ['Subscription.channel.type'], diagnostics: expect.stringMatching(/Channel 'email' is not supported/) });
  });
});
