/**
 * R4 backport notifications: every notification type and content level validates against the IG 1.1.0
 * profiles (backport-subscription-notification-r4 + backport-subscription-status-r4), and has the
 * same shape as the IG's own example for the same events.
 */
import { describe, expect, it } from 'vitest';
import type { Bundle, Parameters } from 'fhir/r4.js';
import { buildNotification, type BuildOptions } from '../../src/notify/bundle-builder.js';
import type { NotificationInput, PayloadContent } from '../../src/notify/notification-model.js';
import { notificationBundleR4, statusSearchsetR4 } from '../../src/versions/r4/notification-r4.js';
import { describeIssues, igValidationErrors, IG_PROFILES, r4NotificationErrors, r4StatusSearchsetErrors } from '../support/ig-validator.js';
import { igExample, notificationShape } from '../support/notification-shape.js';

// The events of the IG examples: subscription "admission" on https://example.org/fhir, event 2 is the
// creation of an in-progress Encounter of Example Patient.
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
const EVENT_TIME = '2020-05-29T11:44:13.1882432-05:00';
const NO_RESPONSE = { coding: [{ code: 'no-response', system: 'http://terminology.hl7.org/CodeSystem/subscription-error' }] };

function input(content: PayloadContent, over: Partial<NotificationInput> = {}): NotificationInput {
  return {
    subscription: { id: 'admission', topicUrl: 'http://hl7.org/SubscriptionTopic/admission', status: 'active', content },
    type: 'event-notification',
    eventsSinceSubscriptionStart: 2,
    events: [{ eventNumber: 2, timestamp: EVENT_TIME, focus: { reference: `Encounter/${ENCOUNTER.id}`, resource: ENCOUNTER, interaction: 'create' } }],
    baseUrl: BASE,
    ...over,
  };
}

const withPatient = (content: PayloadContent) =>
  input(content, {
    events: [
      {
        eventNumber: 2,
        timestamp: EVENT_TIME,
        focus: { resource: ENCOUNTER, interaction: 'create' },
        additionalContext: [{ reference: `${BASE}/Patient/${PATIENT.id}`, resource: PATIENT }],
      },
    ],
  });

const r4 = (i: NotificationInput, o?: BuildOptions): Bundle => notificationBundleR4(buildNotification(i, o));

/** Every notification Clarion can send on R4, by name. */
const CASES: Record<string, Bundle> = {
  handshake: r4(input('id-only', { type: 'handshake', eventsSinceSubscriptionStart: 0, events: [], subscription: { id: 'admission', topicUrl: 'http://hl7.org/SubscriptionTopic/admission', status: 'requested', content: 'id-only' } })),
  heartbeat: r4(input('id-only', { type: 'heartbeat', events: [] })),
  'heartbeat in error': r4(input('empty', { type: 'heartbeat', events: [], errors: [NO_RESPONSE], subscription: { id: 'admission', topicUrl: 'http://hl7.org/SubscriptionTopic/admission', status: 'error', content: 'empty' } })),
  'event-notification empty': r4(input('empty')),
  'event-notification id-only': r4(input('id-only')),
  'event-notification full-resource': r4(input('full-resource')),
  'event-notification multi-resource': r4(withPatient('full-resource')),
  'event-notification id-only with context': r4(withPatient('id-only')),
  'event-notification several events': r4(
    input('full-resource', {
      eventsSinceSubscriptionStart: 4,
      events: [
        { eventNumber: 3, timestamp: EVENT_TIME, focus: { resource: ENCOUNTER, interaction: 'update' }, additionalContext: [{ resource: PATIENT }] },
        { eventNumber: 4, timestamp: EVENT_TIME, focus: { reference: 'Encounter/gone', interaction: 'delete' }, additionalContext: [{ resource: PATIENT }] },
      ],
    }),
  ),
  error: r4(input('id-only', { type: 'query-status', eventsSinceSubscriptionStart: 3, events: [], errors: [NO_RESPONSE], subscription: { id: 'admission', topicUrl: 'http://hl7.org/SubscriptionTopic/admission', status: 'error', content: 'id-only' } })),
  'query-event': r4(input('full-resource', { type: 'query-event', eventsSinceSubscriptionStart: 7 })),
};

describe('R4 notification bundles validate against the IG profiles', () => {
  it.each(Object.entries(CASES))('%s', (_name, bundle) => {
    expect(r4NotificationErrors(bundle)).toEqual([]);
  });

  it('the validator catches broken bundles (the check is real)', () => {
    const wrongType = structuredClone(CASES['event-notification full-resource']);
    const count = (wrongType.entry![0].resource as Parameters).parameter!.find((p) => p.name === 'events-since-subscription-start')!;
    delete count.valueString;
    count.valueInteger = 2;
    expect(r4NotificationErrors(wrongType).join('\n')).toContain("name='events-since-subscription-start'");
    const reversed = structuredClone(CASES['event-notification full-resource']);
    reversed.entry!.reverse();
    expect(r4NotificationErrors(reversed).join('\n')).toContain('entry.first().resource.is(Parameters)');
  });
});

describe('R4 notification bundles have the shape of the IG examples', () => {
  const same = (ours: Bundle, file: string) => expect(notificationShape(ours)).toEqual(notificationShape(igExample(file)));

  it('handshake', () => same(CASES.handshake, 'Bundle-r4-notification-handshake.json'));
  it('heartbeat', () => same(CASES.heartbeat, 'Bundle-r4-notification-heartbeat.json'));
  it('full-resource', () => same(CASES['event-notification full-resource'], 'Bundle-r4-notification-full-resource.json'));
  it('multi-resource', () => same(CASES['event-notification multi-resource'], 'Bundle-r4-notification-multi-resource.json'));
  it('error', () => same(CASES.error, 'Bundle-r4-notification-error.json'));

  it('empty: the same once the topic is included as the example does (Clarion omits it: SHOULD NOT)', () => {
    same(r4(input('empty'), { topicForEmpty: true }), 'Bundle-r4-notification-empty.json');
    const params = (CASES['event-notification empty'].entry![0].resource as Parameters).parameter!;
    expect(params.map((p) => p.name)).toEqual(['subscription', 'status', 'type', 'events-since-subscription-start', 'notification-event']);
    expect(CASES['event-notification empty'].entry).toHaveLength(1);
  });

  it('id-only: status as in 1.1.0, plus the id-only entry of the 1.0.0 example (fullUrl, request, response, no resource)', () => {
    const ours = notificationShape(CASES['event-notification id-only']) as Bundle;
    const v110 = notificationShape(igExample('Bundle-r4-notification-id-only.json')) as Bundle;
    expect(ours.entry![0]).toEqual(v110.entry![0]);
    const v100 = igExample<Bundle>('Bundle-notification-id-only.json', 'v1.0.0');
    expect(Object.keys(ours.entry![1]).sort()).toEqual(Object.keys(v100.entry![1]).sort());
    expect(ours.entry![1]).toEqual({ fullUrl: `${BASE}/Encounter/${ENCOUNTER.id}`, request: v100.entry![1].request, response: v100.entry![1].response });
  });
});

describe('R4 entries per content level and interaction', () => {
  it('several events: update is PUT 200, delete is DELETE 204 without content, shared context once', () => {
    const entries = CASES['event-notification several events'].entry!.slice(1);
    expect(entries.map((e) => [e.fullUrl, e.request?.method, e.request?.url, e.response?.status, e.resource?.resourceType ?? null])).toEqual([
      [`${BASE}/Encounter/${ENCOUNTER.id}`, 'PUT', `Encounter/${ENCOUNTER.id}`, '200', 'Encounter'],
      [`${BASE}/Patient/${PATIENT.id}`, 'GET', `Patient/${PATIENT.id}`, '200', 'Patient'],
      [`${BASE}/Encounter/gone`, 'DELETE', 'Encounter/gone', '204', null],
    ]);
    const events = (CASES['event-notification several events'].entry![0].resource as Parameters).parameter!.filter((p) => p.name === 'notification-event');
    expect(events.map((e) => e.part!.find((p) => p.name === 'event-number')!.valueString)).toEqual(['3', '4']);
  });

  it('id-only never carries resource content, also for additional context', () => {
    const entries = CASES['event-notification id-only with context'].entry!.slice(1);
    expect(entries).toHaveLength(2);
    expect(entries.every((e) => e.resource === undefined && e.request && e.response && e.fullUrl)).toBe(true);
  });

  it('query-event is a history bundle with the events and their content', () => {
    const b = CASES['query-event'];
    expect(b.type).toBe('history');
    const params = (b.entry![0].resource as Parameters).parameter!;
    expect(params.find((p) => p.name === 'type')!.valueCode).toBe('query-event');
    expect(b.entry).toHaveLength(2);
  });
});

describe('$status answer (query-status searchset)', () => {
  const statuses = [
    buildNotification(input('id-only', { type: 'query-status', events: [] })),
    buildNotification(input('full-resource', { type: 'query-status', subscription: { id: 'other', topicUrl: 'http://hl7.org/SubscriptionTopic/admission', status: 'off', content: 'full-resource' } })),
  ];
  const bundle = statusSearchsetR4(statuses, { selfUrl: `${BASE}/Subscription/$status` });

  it('is a searchset of status Parameters without request/response, each valid', () => {
    expect(bundle.type).toBe('searchset');
    expect(bundle.total).toBe(2);
    expect(bundle.entry!.every((e) => e.request === undefined && e.response === undefined && e.search?.mode === 'match')).toBe(true);
    expect(r4StatusSearchsetErrors(bundle)).toEqual([]);
  });

  it('lists recent events in the status but carries no resource entries', () => {
    const params = (bundle.entry![1].resource as Parameters).parameter!;
    expect(params.filter((p) => p.name === 'notification-event')).toHaveLength(1);
    expect(params.find((p) => p.name === 'status')!.valueCode).toBe('off');
    expect(bundle.entry).toHaveLength(2);
  });

  it('an empty searchset is still a valid Bundle', () => {
    expect(r4StatusSearchsetErrors(statusSearchsetR4([]))).toEqual([]);
  });

  it('the IG status example validates with the same helper', () => {
    expect(describeIssues(igValidationErrors(igExample('Parameters-r4-notification-status.json'), IG_PROFILES.statusR4))).toEqual([]);
  });
});
