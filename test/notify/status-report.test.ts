/**
 * The neutral query-status / query-event notifications: counts are reported, never incremented;
 * errors use the subscription-error code system; events keep number and timestamp; focus and context
 * follow the content level; the content hint never exceeds the subscription's level; results validate
 * as R4 notifications.
 */
import { describe, expect, it } from 'vitest';
import { buildNotification } from '../../src/notify/bundle-builder.js';
import type { FhirResource } from '../../src/notify/notification-model.js';
import {
  contentKeys, effectiveContent, eventReportInput, statusReportInput, subscriptionErrorConcept, SUBSCRIPTION_ERROR_SYSTEM,
  type LoggedEventInput, type SubscriptionFacts,
} from '../../src/notify/status-report.js';
import { notificationBundleR4, statusSearchsetR4 } from '../../src/versions/r4/notification-r4.js';
import { r4NotificationErrors, r4StatusSearchsetErrors } from '../support/ig-validator.js';

const BASE = 'https://example.org/fhir';
const facts = (over: Partial<SubscriptionFacts> = {}): SubscriptionFacts => ({
  id: 'sub1', topicUrl: 'http://example.org/topic', status: 'active', content: 'full-resource', eventsSinceStart: 12, ...over,
});
const T = new Date('2024-03-01T10:00:00.000Z');
const events: LoggedEventInput[] = [
  { eventNumber: 10, occurredAt: T, focus: { type: 'Encounter', id: 'e1', version: 2 }, interaction: 'update', additionalContext: [{ reference: 'Patient/p1', version: 1 }, { reference: '#contained' }] },
  { eventNumber: 11, occurredAt: new Date(T.getTime() + 1000), focus: { type: 'Encounter', id: 'e2', version: 3 }, interaction: 'delete', additionalContext: [] },
];
const ENC: FhirResource = { resourceType: 'Encounter', id: 'e1', meta: { versionId: '2' }, status: 'finished', class: { code: 'AMB' } };
const PAT: FhirResource = { resourceType: 'Patient', id: 'p1', meta: { versionId: '1' } };
const lookup = (k: { type: string; id: string; version?: number }) => (k.type === 'Encounter' && k.id === 'e1' && k.version === 2 ? ENC : k.type === 'Patient' && k.version === 1 ? PAT : undefined);

describe('query-status', () => {
  it('reports status, topic and the allocated count without incrementing it', () => {
    const n = buildNotification(statusReportInput(facts(), BASE), { topicForEmpty: true });
    expect(n).toMatchObject({ type: 'query-status', status: 'active', eventsSinceSubscriptionStart: 12, topic: 'http://example.org/topic', events: [], entries: [], errors: [] });
    const bundle = statusSearchsetR4([n]);
    expect(r4StatusSearchsetErrors(bundle)).toEqual([]);
  });

  it('reports the recorded error while the subscription is in error or off, not while active', () => {
    const error = { code: 'no-response', message: 'timed out after 10 s' };
    const n = buildNotification(statusReportInput(facts({ status: 'error', error }), BASE));
    expect(n.errors).toEqual([{ coding: [{ system: SUBSCRIPTION_ERROR_SYSTEM, code: 'no-response' }], text: 'timed out after 10 s' }]);
    expect(buildNotification(statusReportInput(facts({ status: 'off', error }), BASE)).errors).toHaveLength(1);
    expect(buildNotification(statusReportInput(facts({ status: 'active', error }), BASE)).errors).toEqual([]);
    expect(r4StatusSearchsetErrors(statusSearchsetR4([n]))).toEqual([]);
  });

  it('keeps only the three subscription-error codes in the code system', () => {
    expect(subscriptionErrorConcept('dns-resolution-error', null)).toEqual({ coding: [{ system: SUBSCRIPTION_ERROR_SYSTEM, code: 'dns-resolution-error' }] });
    expect(subscriptionErrorConcept('error-response', 'HTTP 500')).toEqual({ coding: [{ system: SUBSCRIPTION_ERROR_SYSTEM, code: 'error-response' }], text: 'HTTP 500' });
    expect(subscriptionErrorConcept('tls-failure', 'bad cert')).toEqual({ text: 'tls-failure: bad cert' });
    expect(subscriptionErrorConcept(null, null)).toBeUndefined();
  });
});

describe('query-event', () => {
  it('full-resource: original numbers and timestamps, focus version from the lookup, a deleted focus without content', () => {
    const n = buildNotification(eventReportInput(facts(), events, { content: 'full-resource', baseUrl: BASE, lookup }));
    expect(n.type).toBe('query-event');
    expect(n.eventsSinceSubscriptionStart).toBe(12);
    expect(n.events).toEqual([
      { eventNumber: 10, timestamp: '2024-03-01T10:00:00.000Z', focus: `${BASE}/Encounter/e1`, additionalContext: [`${BASE}/Patient/p1`] },
      { eventNumber: 11, timestamp: '2024-03-01T10:00:01.000Z', focus: `${BASE}/Encounter/e2`, additionalContext: [] },
    ]);
    expect(n.entries).toEqual([
      { fullUrl: `${BASE}/Encounter/e1`, resource: ENC, request: { method: 'PUT', url: 'Encounter/e1' }, response: { status: '200' } },
      { fullUrl: `${BASE}/Patient/p1`, resource: PAT, request: { method: 'GET', url: 'Patient/p1' }, response: { status: '200' } },
      { fullUrl: `${BASE}/Encounter/e2`, request: { method: 'DELETE', url: 'Encounter/e2' }, response: { status: '204' } },
    ]);
    expect(r4NotificationErrors(notificationBundleR4(n))).toEqual([]);
  });

  it('id-only: references and entries without content; empty: numbers only, no entries', () => {
    const idOnly = buildNotification(eventReportInput(facts(), events, { content: 'id-only', baseUrl: BASE, lookup }));
    expect(idOnly.entries.every((e) => e.resource === undefined)).toBe(true);
    expect(idOnly.events[0].focus).toBe(`${BASE}/Encounter/e1`);
    expect(r4NotificationErrors(notificationBundleR4(idOnly))).toEqual([]);
    const empty = buildNotification(eventReportInput(facts(), events, { content: 'empty', baseUrl: BASE, lookup }));
    expect(empty.entries).toEqual([]);
    expect(empty.events.map((e) => [e.eventNumber, e.focus, e.additionalContext])).toEqual([[10, undefined, []], [11, undefined, []]]);
    expect(r4NotificationErrors(notificationBundleR4(empty))).toEqual([]);
  });

  it('with no events it is a query-status notification (a query-event must list an event)', () => {
    const n = buildNotification(eventReportInput(facts(), [], { content: 'id-only', baseUrl: BASE }));
    expect(n.type).toBe('query-status');
    expect(r4NotificationErrors(notificationBundleR4(n))).toEqual([]);
  });

  it('contentKeys lists focus versions (not deletions) and resolvable context, for full-resource only', () => {
    expect(contentKeys(events, 'full-resource')).toEqual([{ type: 'Encounter', id: 'e1', version: 2 }, { type: 'Patient', id: 'p1', version: 1 }]);
    expect(contentKeys(events, 'id-only')).toEqual([]);
  });

  it('the content hint is honoured up to the subscription level, capped above it', () => {
    expect(effectiveContent('full-resource', 'empty')).toBe('empty');
    expect(effectiveContent('full-resource', 'id-only')).toBe('id-only');
    expect(effectiveContent('id-only', 'full-resource')).toBe('id-only');
    expect(effectiveContent('empty', 'id-only')).toBe('empty');
    expect(effectiveContent('id-only')).toBe('id-only');
  });
});
