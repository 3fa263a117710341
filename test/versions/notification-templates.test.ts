/**
 * NotificationTemplates renders the bytes of what renderNotification renders, for every wire version,
 * content level and format: notifications that share events (one write, many subscriptions) differ
 * only in their subscription, numbers and status id, and each keeps an id of its own.
 */
import { describe, expect, it } from 'vitest';
import type { NotificationInput, PayloadContent } from '../../src/notify/notification-model.js';
import type { SubscriptionSpec } from '../../src/subscriptions/subscription-model.js';
import { renderNotification } from '../../src/versions/notification-renderer.js';
import { NotificationTemplates } from '../../src/versions/notification-templates.js';

const BASE = 'https://example.org/fhir';
const TOPIC = 'http://hl7.org/SubscriptionTopic/admission';
const T = '2026-11-21T10:00:00.000Z';
const ENCOUNTER = {
  resourceType: 'Encounter',
  id: 'enc-1',
  meta: { versionId: '3' },
  status: 'in-progress',
  // A quoted 16-digit number in the content must stay as it is.
  identifier: [{ system: 'urn:example', value: '1234567890123456' }],
  subject: { reference: 'Patient/p-1' },
};
const PATIENT = { resourceType: 'Patient', id: 'p-1', meta: { versionId: '1' }, name: [{ text: 'A <b>"quoted"</b> & ünïcode name' }] };

const VERSIONS = ['R4', 'R4B', 'R5'] as const;
const CONTENTS: PayloadContent[] = ['empty', 'id-only', 'full-resource'];
const FORMATS = ['application/fhir+json', 'application/fhir+xml'];

function spec(id: string, content: PayloadContent, notificationVersion: SubscriptionSpec['notificationVersion'], contentType: string): SubscriptionSpec {
  return { id, topic: TOPIC, status: 'active', filters: [], channel: { type: 'websocket', headers: [] }, contentType, content, notificationVersion };
}

/** Subscription `id` got events `first`… for the same two changes as every other subscription. */
function input(id: string, content: PayloadContent, first: number, events = 2): NotificationInput {
  const all = [
    { eventNumber: first, timestamp: T, focus: { reference: 'Encounter/enc-1', interaction: 'create' as const, ...(content === 'full-resource' ? { resource: ENCOUNTER } : {}) }, additionalContext: [{ reference: 'Patient/p-1', ...(content === 'full-resource' ? { resource: PATIENT } : {}) }] },
    { eventNumber: first + 1, timestamp: T, focus: { reference: 'Encounter/enc-2', interaction: 'delete' as const }, additionalContext: [] },
  ].slice(0, events);
  return {
    subscription: { id, topicUrl: TOPIC, status: 'active', content },
    type: 'event-notification',
    eventsSinceSubscriptionStart: first + events - 1,
    events: all,
    baseUrl: BASE,
  };
}

/** The status resource id and Bundle timestamp of a rendered notification (JSON or XML). */
function idAndTime(body: string): { id: string; timestamp: string } {
  const id = /urn:uuid:([0-9a-f-]{36})/.exec(body)?.[1];
  const timestamp = /"timestamp":"([^"]+)"|<timestamp value="([^"]+)"/.exec(body);
  if (!id || !timestamp) throw new Error(`no id or timestamp in ${body.slice(0, 200)}`);
  return { id, timestamp: timestamp[1] ?? timestamp[2] };
}

/** What renderNotification gives for the same input, with the id and timestamp the template chose. */
function normally(i: NotificationInput, s: SubscriptionSpec, body: string): string {
  const { id, timestamp } = idAndTime(body);
  return renderNotification(i, s, { newId: () => id, now: () => new Date(timestamp) }).body;
}

/** Renders with `templates`, checks the bytes against renderNotification's, returns the text. */
function render(templates: NotificationTemplates, i: NotificationInput, s: SubscriptionSpec): string {
  const body = templates.bytes(i, s).toString('utf8');
  expect(body).toBe(normally(i, s, body));
  return body;
}

describe('NotificationTemplates renders exactly what renderNotification renders', () => {
  for (const version of VERSIONS) {
    for (const content of CONTENTS) {
      for (const format of FORMATS) {
        it(`${version}, ${content}, ${format}`, () => {
          const templates = new NotificationTemplates();
          const subs = [
            { id: 'sub-a', first: 1 },
            { id: 'sub-b', first: 41 },
            { id: 'sub.c-3', first: 9_999_999 },
          ];
          const bodies = subs.map(({ id, first }) => render(templates, input(id, content, first), spec(id, content, version, format)));
          // The first of a group is rendered normally; the others were filled in from its template.
          expect(templates.counts).toEqual({ rendered: 1, filled: 2 });
          // Every notification has a status id of its own.
          expect(new Set(bodies.map((b) => idAndTime(b).id)).size).toBe(subs.length);
        });
      }
    }
  }

  it('groups by everything but the subscription-specific values', () => {
    const templates = new NotificationTemplates();
    const json = 'application/fhir+json';
    const cases: [NotificationInput, SubscriptionSpec][] = [
      [input('a', 'id-only', 1), spec('a', 'id-only', 'R4', json)],
      // One event instead of two, another version, another content level, another topic, another base.
      [input('b', 'id-only', 5, 1), spec('b', 'id-only', 'R4', json)],
      [input('c', 'id-only', 5), spec('c', 'id-only', 'R5', json)],
      [input('d', 'empty', 5), spec('d', 'empty', 'R4', json)],
      [{ ...input('e', 'id-only', 5), subscription: { ...input('e', 'id-only', 5).subscription, topicUrl: 'http://example.org/topic' } }, spec('e', 'id-only', 'R4', json)],
      [{ ...input('f', 'id-only', 5), baseUrl: 'https://other.example/fhir' }, spec('f', 'id-only', 'R4', json)],
      [{ ...input('g', 'id-only', 5), subscription: { ...input('g', 'id-only', 5).subscription, status: 'error' } }, spec('g', 'id-only', 'R4', json)],
      // Other resources, by identity.
      [input('h', 'full-resource', 5), spec('h', 'full-resource', 'R4', json)],
      [{ ...input('i', 'full-resource', 5), events: input('i', 'full-resource', 5).events!.map((e, k) => (k === 0 ? { ...e, focus: { ...e.focus!, resource: { ...ENCOUNTER, status: 'finished' } } } : e)) }, spec('i', 'full-resource', 'R4', json)],
    ];
    for (const [i, s] of cases) render(templates, i, s);
    // Each case is a group of its own: rendered normally.
    expect(templates.counts).toEqual({ rendered: cases.length, filled: 0 });
  });

  it('renders handshakes and heartbeats too', () => {
    const templates = new NotificationTemplates();
    for (const type of ['handshake', 'heartbeat'] as const) {
      for (const id of ['a', 'b']) {
        const i: NotificationInput = { subscription: { id, topicUrl: TOPIC, status: 'active', content: 'id-only' }, type, eventsSinceSubscriptionStart: 7, baseUrl: BASE };
        render(templates, i, spec(id, 'id-only', 'R4B', 'application/fhir+json'));
      }
    }
  });

  it('leaves what the renderer would refuse to the renderer', () => {
    const templates = new NotificationTemplates();
    const s = spec('a', 'id-only', 'R4', 'application/fhir+json');
    templates.bytes(input('a', 'id-only', 1), s);
    expect(() => templates.bytes(input('x/y', 'id-only', 1), s)).toThrow(/not a FHIR id/);
    expect(() => templates.bytes({ ...input('b', 'id-only', 1), eventsSinceSubscriptionStart: -1 }, s)).toThrow(/eventsSinceSubscriptionStart/);
    expect(() => templates.bytes(input('c', 'id-only', 0), s)).toThrow(/eventNumber/);
  });
});
