/**
 * R4B and R5 renderings of the same neutral notifications: R4B has the shape of the IG's R4B
 * examples (SubscriptionStatus first in a history Bundle); R5 follows the core rules
 * (subscription-notification Bundle, integer64 as strings, status entry without request/response).
 */
import { describe, expect, it } from 'vitest';
import type { Bundle as R4BBundle, SubscriptionStatus as R4BStatus } from 'fhir/r4b.js';
import { buildNotification } from '../../src/notify/bundle-builder.js';
import type { NotificationInput, PayloadContent } from '../../src/notify/notification-model.js';
import { notificationBundleR4B, statusSearchsetR4B } from '../../src/versions/r4b/notification-r4b.js';
import { notificationBundleR5, statusSearchsetR5 } from '../../src/versions/r5/notification-r5.js';
import { igExample, notificationShape } from '../support/notification-shape.js';

const BASE = 'https://example.org/fhir';
const ENCOUNTER = {
  resourceType: 'Encounter',
  id: '86009987-eabe-42bf-8c02-b112b18cb616',
  status: 'in-progress',
  class: { code: 'VR', system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode' },
  subject: { reference: 'https://example.org/fhir/Patient/1599eb66-431a-447c-a3de-6897fe9ae9a1', display: 'Example Patient' },
};
const PATIENT = {
  resourceType: 'Patient',
  id: '1599eb66-431a-447c-a3de-6897fe9ae9a1',
  active: true,
  name: [{ use: 'usual', text: 'Example Patient', family: 'Patient', given: ['Example'] }],
};
const T = '2020-05-29T11:44:13.1882432-05:00';
const NO_RESPONSE = { coding: [{ code: 'no-response', system: 'http://terminology.hl7.org/CodeSystem/subscription-error' }] };
const sub = (content: PayloadContent, status: 'requested' | 'active' | 'error' = 'active') => ({ id: 'admission', topicUrl: 'http://hl7.org/SubscriptionTopic/admission', status, content });

const event = (content: PayloadContent, withPatient = false): NotificationInput => ({
  subscription: sub(content),
  type: 'event-notification',
  eventsSinceSubscriptionStart: 2,
  events: [{ eventNumber: 2, timestamp: T, focus: { resource: ENCOUNTER, interaction: 'create' }, additionalContext: withPatient ? [{ resource: PATIENT }] : [] }],
  baseUrl: BASE,
});

describe('R4B notification bundles have the shape of the IG R4B examples', () => {
  const same = (i: NotificationInput, file: string, topicForEmpty = false) =>
    expect(notificationShape(notificationBundleR4B(buildNotification(i, { topicForEmpty })))).toEqual(notificationShape(igExample(file)));

  it('handshake', () => same({ subscription: sub('id-only', 'requested'), type: 'handshake', eventsSinceSubscriptionStart: 0, baseUrl: BASE }, 'Bundle-r4b-notification-handshake.json'));
  it('heartbeat', () => same({ subscription: sub('id-only'), type: 'heartbeat', eventsSinceSubscriptionStart: 2, baseUrl: BASE }, 'Bundle-r4b-notification-heartbeat.json'));
  it('empty (with the topic, as the example)', () => same(event('empty'), 'Bundle-r4b-notification-empty.json', true));
  it('id-only (status entry; Clarion adds the id-only entry)', () => {
    const ours = notificationShape(notificationBundleR4B(buildNotification(event('id-only')))) as R4BBundle;
    expect(ours.entry![0]).toEqual((notificationShape(igExample('Bundle-r4b-notification-id-only.json')) as R4BBundle).entry![0]);
    expect(ours.entry![1]).toEqual({ fullUrl: `${BASE}/Encounter/${ENCOUNTER.id}`, request: { method: 'POST', url: 'Encounter' }, response: { status: '201' } });
  });
  it('full-resource', () => same(event('full-resource'), 'Bundle-r4b-notification-full-resource.json'));
  it('multi-resource', () => same(event('full-resource', true), 'Bundle-r4b-notification-multi-resource.json'));
  it('error', () =>
    same({ subscription: sub('id-only', 'error'), type: 'query-status', eventsSinceSubscriptionStart: 3, errors: [NO_RESPONSE], baseUrl: BASE }, 'Bundle-r4b-notification-error.json'));

  it('$status answers are searchsets of SubscriptionStatus', () => {
    const b = statusSearchsetR4B([buildNotification({ subscription: sub('id-only'), type: 'query-status', eventsSinceSubscriptionStart: 5, baseUrl: BASE })]);
    expect(b.type).toBe('searchset');
    const s = b.entry![0].resource as R4BStatus;
    expect([s.resourceType, s.type, s.status, s.eventsSinceSubscriptionStart]).toEqual(['SubscriptionStatus', 'query-status', 'active', '5']);
    expect(b.entry![0].request).toBeUndefined();
  });
});

describe('R5 notification bundles', () => {
  it('are subscription-notification Bundles with the status first and integer64 as strings', () => {
    const b = notificationBundleR5(buildNotification(event('full-resource', true)));
    expect(b.type).toBe('subscription-notification');
    expect(b.entry![0]).toEqual({
      fullUrl: expect.stringMatching(/^urn:uuid:/),
      resource: {
        resourceType: 'SubscriptionStatus',
        id: expect.any(String),
        status: 'active',
        type: 'event-notification',
        eventsSinceSubscriptionStart: '2',
        notificationEvent: [{ eventNumber: '2', timestamp: T, focus: { reference: `${BASE}/Encounter/${ENCOUNTER.id}` }, additionalContext: [{ reference: `${BASE}/Patient/${PATIENT.id}` }] }],
        subscription: { reference: `${BASE}/Subscription/admission` },
        topic: 'http://hl7.org/SubscriptionTopic/admission',
      },
    });
    expect(b.entry!.slice(1).map((e) => [e.fullUrl, e.resource?.resourceType, e.request?.method])).toEqual([
      [`${BASE}/Encounter/${ENCOUNTER.id}`, 'Encounter', 'POST'],
      [`${BASE}/Patient/${PATIENT.id}`, 'Patient', 'GET'],
    ]);
  });

  it('keep entered-in-error (R5 only) and report errors', () => {
    const n = buildNotification({ subscription: { ...sub('empty'), status: 'entered-in-error' }, type: 'heartbeat', eventsSinceSubscriptionStart: 0, errors: [NO_RESPONSE], baseUrl: BASE });
    const s = notificationBundleR5(n).entry![0].resource as any;
    expect([s.status, s.error]).toEqual(['entered-in-error', [NO_RESPONSE]]);
    expect((notificationBundleR4B(n).entry![0].resource as R4BStatus).status).toBe('error');
  });

  it('$status answers are searchsets of SubscriptionStatus', () => {
    const b = statusSearchsetR5([buildNotification({ subscription: sub('id-only'), type: 'query-status', eventsSinceSubscriptionStart: 1, baseUrl: BASE })]);
    expect([b.type, b.total, (b.entry![0].resource as any).type, b.entry![0].search?.mode]).toEqual(['searchset', 1, 'query-status', 'match']);
  });
});
