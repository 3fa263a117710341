/** The version-neutral notification: payload rules per content level, references, entries, input checks. */
import { describe, expect, it } from 'vitest';
import { buildNotification, NotificationInputError } from '../../src/notify/bundle-builder.js';
import type { NotificationInput, PayloadContent } from '../../src/notify/notification-model.js';

const BASE = 'https://fhir.test/r4/';
const OBS = { resourceType: 'Observation', id: 'o1', meta: { versionId: '3' }, status: 'final' };
const PAT = { resourceType: 'Patient', id: 'p1' };

function input(content: PayloadContent, over: Partial<NotificationInput> = {}): NotificationInput {
  return {
    subscription: { id: 's1', topicUrl: 'https://clarion.dev/fhir/SubscriptionTopic/observation-new', status: 'active', content },
    type: 'event-notification',
    eventsSinceSubscriptionStart: 9,
    events: [{ eventNumber: 9, timestamp: '2025-01-02T03:04:05.000Z', focus: { resource: OBS, interaction: 'create' }, additionalContext: [{ reference: 'Patient/p1', resource: PAT }] }],
    baseUrl: BASE,
    ...over,
  };
}

const fixed = { newId: () => '00000000-0000-4000-8000-000000000000', now: () => new Date('2025-01-02T03:04:06Z') };

describe('buildNotification', () => {
  it('makes references absolute against the base (trailing slash ignored) and identifies the status request', () => {
    const n = buildNotification(input('id-only'), fixed);
    expect(n).toMatchObject({
      id: '00000000-0000-4000-8000-000000000000',
      timestamp: '2025-01-02T03:04:06.000Z',
      subscriptionReference: 'https://fhir.test/r4/Subscription/s1',
      statusRequestUrl: 'https://fhir.test/r4/Subscription/s1/$status',
      topic: 'https://clarion.dev/fhir/SubscriptionTopic/observation-new',
      events: [{ eventNumber: 9, focus: 'https://fhir.test/r4/Observation/o1', additionalContext: ['https://fhir.test/r4/Patient/p1'] }],
    });
  });

  it('empty: no topic, no focus or context, no entries', () => {
    const n = buildNotification(input('empty'));
    expect(n.topic).toBeUndefined();
    expect(n.events).toEqual([{ eventNumber: 9, timestamp: '2025-01-02T03:04:05.000Z', additionalContext: [] }]);
    expect(n.entries).toEqual([]);
    expect(buildNotification(input('empty'), { topicForEmpty: true }).topic).toBeDefined();
  });

  it('id-only: entries with fullUrl, request and response, never the resource', () => {
    expect(buildNotification(input('id-only')).entries).toEqual([
      { fullUrl: 'https://fhir.test/r4/Observation/o1', request: { method: 'POST', url: 'Observation' }, response: { status: '201' } },
      { fullUrl: 'https://fhir.test/r4/Patient/p1', request: { method: 'GET', url: 'Patient/p1' }, response: { status: '200' } },
    ]);
  });

  it('full-resource: entries carry the content', () => {
    const e = buildNotification(input('full-resource')).entries;
    expect(e.map((x) => x.resource)).toEqual([OBS, PAT]);
  });

  it('full-resource without available content keeps request/response only', () => {
    const n = buildNotification(input('full-resource', { events: [{ eventNumber: 9, focus: { reference: 'Observation/o1', interaction: 'update' } }] }));
    expect(n.entries).toEqual([{ fullUrl: 'https://fhir.test/r4/Observation/o1', request: { method: 'PUT', url: 'Observation/o1' }, response: { status: '200' } }]);
  });

  it('strips _history from references (bdl-8) and keeps absolute http(s) references as they are', () => {
    const n = buildNotification(
      input('id-only', { events: [{ eventNumber: 9, focus: { reference: 'Observation/o1/_history/3', interaction: 'update' }, additionalContext: [{ reference: 'https://other.test/fhir/Patient/x' }] }] }),
    );
    expect(n.events[0]).toMatchObject({ focus: 'https://fhir.test/r4/Observation/o1', additionalContext: ['https://other.test/fhir/Patient/x'] });
    expect(n.entries.map((e) => e.fullUrl)).toEqual(['https://fhir.test/r4/Observation/o1', 'https://other.test/fhir/Patient/x']);
  });

  it('carries a resource shared by several events once', () => {
    const ev = (n: number) => ({ eventNumber: n, focus: { resource: { ...OBS, id: `o${n}` }, interaction: 'create' as const }, additionalContext: [{ resource: PAT }] });
    const n = buildNotification(input('full-resource', { eventsSinceSubscriptionStart: 11, events: [ev(10), ev(11)] }));
    expect(n.entries.map((e) => e.fullUrl)).toEqual(['https://fhir.test/r4/Observation/o10', 'https://fhir.test/r4/Patient/p1', 'https://fhir.test/r4/Observation/o11']);
  });

  it('query-status lists events but carries no resource entries', () => {
    const n = buildNotification(input('full-resource', { type: 'query-status' }));
    expect(n.events).toHaveLength(1);
    expect(n.entries).toEqual([]);
  });

  it('handshake and heartbeat need no events; event-notification and query-event do', () => {
    expect(buildNotification(input('id-only', { type: 'handshake', events: [], eventsSinceSubscriptionStart: 0 })).events).toEqual([]);
    expect(buildNotification(input('id-only', { type: 'heartbeat', events: undefined })).events).toEqual([]);
    for (const type of ['event-notification', 'query-event'] as const) {
      expect(() => buildNotification(input('id-only', { type, events: [] }))).toThrow(NotificationInputError);
    }
  });

  it('rejects input the IG does not allow', () => {
    const bad: [string, NotificationInput][] = [
      ['focus SHALL be present', input('id-only', { events: [{ eventNumber: 1 }] })],
      ['eventNumber must be an integer', input('id-only', { events: [{ eventNumber: 0.5, focus: { resource: OBS } }] })],
      ['eventsSinceSubscriptionStart must be an integer', input('id-only', { eventsSinceSubscriptionStart: -1 })],
      ["'urn:uuid:1' is not a Type/id reference", input('id-only', { events: [{ eventNumber: 1, focus: { reference: 'urn:uuid:1' } }] })],
      ['does not match the resource', input('id-only', { events: [{ eventNumber: 1, focus: { reference: 'Patient/o1', resource: OBS } }] })],
      ['is not a FHIR id', input('id-only', { subscription: { id: 'a/b', topicUrl: 'x', status: 'active', content: 'id-only' } })],
    ];
    for (const [message, i] of bad) expect(() => buildNotification(i), message).toThrow(message);
  });

  it('an empty subscription needs no focus', () => {
    expect(() => buildNotification(input('empty', { events: [{ eventNumber: 1 }] }))).not.toThrow();
  });
});
