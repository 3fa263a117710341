/**
 * Rendering many notifications that differ only in subscription-specific values — a write that
 * triggers 10,000 subscriptions of one topic gives 10,000 notifications with the same events, entries
 * and content, but each with its own subscription reference, event numbers, event count and status
 * resource id. Rendering and serialising each one in full dominated the websocket fan-out, so a
 * `NotificationTemplates` renders such a group once, with sentinel values in those places, splits the
 * serialised text at the sentinels, and fills each notification in by copying: straight into the
 * bytes that go on the wire (the values are ASCII), so no 10,000 strings are built and encoded.
 *
 * The output is the normal renderer's (renderNotification), byte for byte: the first notification of
 * each group is rendered normally and compared with the template filled in with its values; on any
 * difference (say, a resource that happens to contain a sentinel) the group is rendered normally.
 * Each notification keeps its own random status-resource id (and `urn:uuid:` fullUrl); the Bundle
 * timestamp is the moment the group's template was made, which is when these notifications were
 * generated (a template lives for one fan-out round).
 */
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import type { EventResourceInput, NotificationInput } from '../notify/notification-model.js';
import type { SubscriptionSpec } from '../subscriptions/subscription-model.js';
import { notificationBundle, renderNotification, serializeNotificationBundle } from './notification-renderer.js';

/** Sentinels: a per-process nonce (letters and digits only, so a valid FHIR id and URL segment). */
const NONCE = randomBytes(12).toString('hex');
const ID_SENTINEL = `clarionid${NONCE}`;
const SUBSCRIPTION_SENTINEL = `clarionsub${NONCE}`;
/**
 * Counts are rendered as strings in every version (integer64 in R5, strings in R4/R4B): the count is
 * COUNT_SENTINEL and event i is COUNT_SENTINEL + 1 + i, random 16-digit numbers found in quotes.
 */
const COUNT_SENTINEL = 1_000_000_000_000_000 + randomInt(2 ** 47);
const NUMBER = /^\d{16}$/;
/** Slot values are quoted strings in JSON and attribute values in XML: `"…"` either way. */
const SLOTS = new RegExp(`${ID_SENTINEL}|${SUBSCRIPTION_SENTINEL}|(?<=")\\d{16}(?=")`, 'g');
/** A FHIR id is ASCII and needs no escaping in JSON or XML (others render normally, and fail as they would). */
const FHIR_ID = /^[A-Za-z0-9\-.]{1,64}$/;

type Slot = { kind: 'id' } | { kind: 'subscription' } | { kind: 'count' } | { kind: 'event'; index: number };

interface Template {
  /** UTF-8 text between slots: parts.length === slots.length + 1. */
  parts: Buffer[];
  partsLength: number;
  slots: Slot[];
  timestamp: Date;
}

/** The UTF-8 bytes of `renderNotification(input, spec).body`. */
export type NotificationBytes = (input: NotificationInput, spec: SubscriptionSpec) => Buffer;

/** The renderer of one fan-out round (a template lives as long as the instance). */
export class NotificationTemplates {
  /** By group key; null when the group renders normally. */
  private readonly templates = new Map<string, Template | null>();
  private readonly resourceIds = new WeakMap<object, number>();
  private resourceCount = 0;
  /** Notifications rendered in full, and filled in from a template (diagnostics, tests). */
  readonly counts = { rendered: 0, filled: 0 };

  readonly bytes: NotificationBytes = (input, spec) => {
    if (!fillable(input)) return this.rendered(input, spec);
    const key = this.keyOf(input, spec);
    const template = this.templates.get(key);
    if (template === null) return this.rendered(input, spec);
    if (template === undefined) {
      const made = makeTemplate(input, spec);
      const id = randomUUID();
      const normal = this.rendered(input, spec, id, made.timestamp);
      this.templates.set(key, normal.equals(fill(made, input, id)) ? made : null);
      return normal;
    }
    this.counts.filled++;
    return fill(template, input, randomUUID());
  };

  private rendered(input: NotificationInput, spec: SubscriptionSpec, id?: string, now?: Date): Buffer {
    this.counts.rendered++;
    const options = id !== undefined && now !== undefined ? { newId: () => id, now: () => now } : {};
    return Buffer.from(renderNotification(input, spec, options).body, 'utf8');
  }

  /**
   * Everything the rendered text depends on except the slot values; resources by identity. Built by
   * concatenation (length-prefixed, so unambiguous): it is computed for every notification.
   */
  private keyOf(input: NotificationInput, spec: SubscriptionSpec): string {
    const s = input.subscription;
    let key = field(spec.notificationVersion) + field(spec.contentType) + field(input.type) + field(s.topicUrl) + field(s.status) + field(s.content) + field(input.baseUrl);
    key += input.errors?.length ? field(JSON.stringify(input.errors)) : '~';
    for (const e of input.events ?? []) {
      key += field(e.timestamp) + this.resourceKey(e.focus);
      const context = e.additionalContext ?? [];
      key += `${context.length}#`;
      for (const c of context) key += this.resourceKey(c);
    }
    return key;
  }

  private resourceKey(r: EventResourceInput | undefined): string {
    if (!r) return '~';
    let key = field(r.reference) + field(r.interaction);
    if (r.resource) {
      let id = this.resourceIds.get(r.resource);
      if (id === undefined) this.resourceIds.set(r.resource, (id = this.resourceCount++));
      key += `${id}`;
    }
    return `${key}.`;
  }
}

function field(v: string | undefined): string {
  return v === undefined ? '~' : `${v.length}:${v}`;
}

function makeTemplate(input: NotificationInput, spec: SubscriptionSpec): Template {
  const timestamp = new Date();
  const events = input.events ?? [];
  const sentinel: NotificationInput = {
    ...input,
    subscription: { ...input.subscription, id: SUBSCRIPTION_SENTINEL },
    eventsSinceSubscriptionStart: COUNT_SENTINEL,
    events: events.map((e, i) => ({ ...e, eventNumber: COUNT_SENTINEL + 1 + i })),
  };
  const text = serializeNotificationBundle(notificationBundle(sentinel, spec.notificationVersion, { newId: () => ID_SENTINEL, now: () => timestamp }), spec.contentType);
  const parts: Buffer[] = [];
  const slots: Slot[] = [];
  let from = 0;
  for (const m of text.matchAll(SLOTS)) {
    const slot = slotOf(m[0], events.length);
    if (!slot) continue; // a 16-digit number of the content, not ours
    parts.push(Buffer.from(text.slice(from, m.index), 'utf8'));
    slots.push(slot);
    from = m.index + m[0].length;
  }
  parts.push(Buffer.from(text.slice(from), 'utf8'));
  return { parts, partsLength: parts.reduce((n, p) => n + p.length, 0), slots, timestamp };
}

function slotOf(match: string, eventCount: number): Slot | undefined {
  if (match === ID_SENTINEL) return { kind: 'id' };
  if (match === SUBSCRIPTION_SENTINEL) return { kind: 'subscription' };
  if (!NUMBER.test(match)) return undefined;
  const offset = Number(match) - COUNT_SENTINEL;
  if (offset === 0) return { kind: 'count' };
  if (offset >= 1 && offset <= eventCount) return { kind: 'event', index: offset - 1 };
  return undefined;
}

/** Values the renderer would accept, and print as they are (else the normal renderer decides, or throws). */
function fillable(input: NotificationInput): boolean {
  const count = (n: number, min: number) => Number.isSafeInteger(n) && n >= min;
  return FHIR_ID.test(input.subscription.id) && count(input.eventsSinceSubscriptionStart, 0) && (input.events ?? []).every((e) => count(e.eventNumber, 1));
}

/** The template's parts with the slot values (ASCII: ids, UUIDs and decimal numbers) in between. */
function fill(t: Template, input: NotificationInput, id: string): Buffer {
  const events = input.events ?? [];
  const values = t.slots.map((slot) =>
    slot.kind === 'id' ? id
    : slot.kind === 'subscription' ? input.subscription.id
    : slot.kind === 'count' ? String(input.eventsSinceSubscriptionStart)
    : String(events[slot.index].eventNumber),
  );
  let length = t.partsLength;
  for (const v of values) length += v.length;
  const out = Buffer.allocUnsafe(length);
  let at = t.parts[0].copy(out, 0);
  for (let i = 0; i < values.length; i++) {
    at += out.write(values[i], at, 'latin1');
    at += t.parts[i + 1].copy(out, at);
  }
  return out;
}
