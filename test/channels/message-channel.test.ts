import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { Bundle, MessageHeader, OperationOutcomeIssue } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointGuard } from '../../src/channels/endpoint-guard.js';
import { MessageChannel, NOTIFICATION_TYPE_SYSTEM, processMessageUrl } from '../../src/channels/message-channel.js';
import type { NotificationInput } from '../../src/notify/notification-model.js';
import type { SubscriptionSpec } from '../../src/subscriptions/subscription-model.js';
import { renderNotification } from '../../src/versions/notification-renderer.js';
import { describeIssues, ensureIgProfiles, r4NotificationErrors } from '../support/ig-validator.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

const BASE = 'https://clarion.example/fhir';
let receiver: Receiver;
const local = new MessageChannel({ guard: new EndpointGuard({ allow: ['127.0.0.1/32'], allowHttp: true }) });
const strict = new MessageChannel({ guard: new EndpointGuard({ allow: [], allowHttp: false }) });

const spec: SubscriptionSpec = {
  id: 'sub-m', topic: 'http://hl7.org/SubscriptionTopic/admission', status: 'active', filters: [], contentType: 'application/fhir+json', content: 'id-only', notificationVersion: 'R4',
  channel: { type: 'message', endpoint: 'https://receiver.example/fhir', headers: [] },
};

function rendered(type: NotificationInput['type']) {
  return renderNotification({
    subscription: { id: 'sub-m', topicUrl: spec.topic, status: type === 'handshake' ? 'requested' : 'active', content: 'id-only' },
    type,
    eventsSinceSubscriptionStart: type === 'handshake' ? 0 : 3,
    events: type === 'event-notification' ? [{ eventNumber: 3, timestamp: '2026-01-02T03:04:05.000Z', focus: { reference: 'Encounter/e1', interaction: 'create' } }] : [],
    baseUrl: BASE,
  }, spec);
}

/** Base R4 errors (bdl-12: a message Bundle starts with a MessageHeader, …). */
function r4Errors(bundle: Bundle): string[] {
  ensureIgProfiles();
  try {
    validateResource(bundle);
    return [];
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    return describeIssues(((err.outcome.issue ?? []) as OperationOutcomeIssue[]).filter((i) => i.severity === 'error'));
  }
}

beforeAll(async () => {
  receiver = await startReceiver('/fhir');
});
afterAll(async () => {
  await local.close();
  await strict.close();
  await receiver.close();
});

describe('message channel', () => {
  it('POSTs a message Bundle (MessageHeader, then the notification bundle) to [endpoint]/$process-message', async () => {
    receiver.respondWith(200);
    const n = rendered('event-notification');
    const res = await local.deliver({ subscriptionId: 'sub-m', endpoint: receiver.url, headers: ['Authorization: Bearer m2m'], timeoutMs: 5000 }, n);
    expect(res).toEqual({ ok: true, status: 200 });
    const [r] = await receiver.until(1);
    expect(r.method).toBe('POST');
    expect(r.url).toBe('/fhir/$process-message');
    expect(r.headers['content-type']).toBe('application/fhir+json');
    expect(r.headers.authorization).toBe('Bearer m2m');
    const message = JSON.parse(r.body) as Bundle;
    expect(message.type).toBe('message');
    expect(r4Errors(message)).toEqual([]);
    const header = message.entry?.[0]?.resource as MessageHeader;
    expect(header.resourceType).toBe('MessageHeader');
    expect(message.entry?.[0]?.fullUrl).toBe(`urn:uuid:${header.id}`);
    expect(header.eventCoding).toEqual({ system: NOTIFICATION_TYPE_SYSTEM, code: 'event-notification' });
    expect(header.source.endpoint).toBe(BASE);
    expect(header.destination).toEqual([{ endpoint: receiver.url }]);
    expect(header.focus).toEqual([{ reference: message.entry?.[1]?.fullUrl }]);
    const notification = message.entry?.[1]?.resource as Bundle;
    expect(notification).toEqual(JSON.parse(n.body));
    expect(r4NotificationErrors(notification)).toEqual([]);
  });

  it('a handshake is a message whose event is handshake', async () => {
    receiver.respondWith(202);
    const before = receiver.received.length;
    expect(await local.deliver({ subscriptionId: 'sub-m', endpoint: `${receiver.url}/`, headers: [], timeoutMs: 5000 }, rendered('handshake'))).toEqual({ ok: true, status: 202 });
    const r = (await receiver.until(before + 1))[before];
    expect(r.url).toBe('/fhir/$process-message');
    const message = JSON.parse(r.body) as Bundle;
    expect((message.entry?.[0]?.resource as MessageHeader).eventCoding?.code).toBe('handshake');
    expect(r4NotificationErrors(message.entry?.[1]?.resource as Bundle)).toEqual([]);
  });

  it('a non-2xx answer is an error-response', async () => {
    receiver.respondWith(500);
    expect(await local.deliver({ subscriptionId: 'sub-m', endpoint: receiver.url, headers: [], timeoutMs: 5000 }, rendered('heartbeat'))).toMatchObject({ ok: false, code: 'error-response', httpStatus: 500 });
  });

  it('endpoint and payload rules', () => {
    expect(processMessageUrl('https://x.example/fhir')).toBe('https://x.example/fhir/$process-message');
    expect(processMessageUrl('https://x.example/fhir/$process-message')).toBe('https://x.example/fhir/$process-message');
    expect(processMessageUrl('https://x.example/r4/?a=1')).toBe('https://x.example/r4/$process-message?a=1');
    expect(strict.checkEndpoint(undefined)).toMatch(/needs channel.endpoint: the base URL of the FHIR server/);
    expect(strict.checkEndpoint('http://example.org/fhir')).toMatch(/plain http is refused/);
    expect(strict.checkEndpoint('https://127.0.0.1/fhir')).toMatch(/loopback, private/);
    expect(strict.checkEndpoint('https://example.org/fhir')).toBeUndefined();
    expect(strict.checkPayload('application/fhir+json')).toBeUndefined();
    expect(strict.checkPayload('application/fhir+xml')).toMatch(/FHIR messages are sent as JSON Bundles/);
    expect(strict.checkPayload('text/plain')).toMatch(/accepted: application\/fhir\+json, application\/json/);
  });

  it('refuses a private address at delivery time too (pinned DNS lookups)', async () => {
    expect(await strict.deliver({ subscriptionId: 'sub-m', endpoint: 'https://127.0.0.1/fhir', headers: [], timeoutMs: 5000 }, rendered('heartbeat'))).toMatchObject({ ok: false, code: 'endpoint-refused' });
  });
});
