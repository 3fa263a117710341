/**
 * Semantic validation of a Subscription (version-neutral, R5 semantics), run on every client create
 * and update after the wire form was read into a SubscriptionSpec. A Subscription is accepted only if
 * the server can honour it (IG "Accepting Subscription Requests"): a registered topic; filters the
 * topic allows and Clarion can evaluate; a registered channel with a usable endpoint; a payload MIME
 * type, FHIR version and content level Clarion renders. The first problem is thrown as a 4xx FhirError
 * whose expression is the offending wire element (the wire layer supplies the paths).
 *
 * Also here: which status the server gives a client write (clients may only ask for `requested` or
 * `off`; the server owns `active` and `error`).
 */
import type { Channel } from '../channels/channel.js';
import type { ChannelRegistry } from '../channels/channel-registry.js';
import { parseChannelHeader } from '../channels/http-headers.js';
import { Errors, FhirError, fhirErrorFromIssues } from '../fhir/errors.js';
import { parseSearchRequest } from '../fhir/search/parse.js';
import { getSearchParam } from '../fhir/search/params.js';
import { isR4ResourceType } from '../fhir/definitions.js';
import type { TopicRegistry } from '../topics/topic-registry.js';
import { topicResourceTypes, type CanFilterBy, type SubscriptionTopic } from '../topics/topic-model.js';
import type { SubscriptionFilter, SubscriptionSpec, SubscriptionStatus } from './subscription-model.js';

/** Wire paths of the spec's elements (from the version layer), so errors name the element the client sent. */
export interface SubscriptionLocations {
  topic: string;
  status: string;
  channelType: string;
  /** The custom-channel Coding, when the subscription has one. */
  customChannel?: string;
  endpoint: string;
  /** The header list; `[i]` is appended. */
  headers: string;
  contentType: string;
  content: string;
}

export type NotificationVersion = SubscriptionSpec['notificationVersion'];

export interface SubscriptionRuleDeps {
  topics: TopicRegistry;
  channels: ChannelRegistry;
  /** Notification wire versions Clarion renders for this server; default R4 and R4B. */
  notificationVersions?: readonly NotificationVersion[];
}

/** MIME types of notifications Clarion produces. */
export const SUPPORTED_PAYLOAD_TYPES: readonly string[] = ['application/fhir+json', 'application/json', 'application/fhir+xml'];
export const PAYLOAD_CONTENTS = ['empty', 'id-only', 'full-resource'] as const;
export const DEFAULT_NOTIFICATION_VERSIONS: readonly NotificationVersion[] = ['R4', 'R4B', 'R5'];
const PREFIXES = ['eq', 'ne', 'gt', 'lt', 'ge', 'le', 'sa', 'eb', 'ap'];
const PREFIXED_TYPES = new Set(['date', 'number', 'quantity']);

/** Throws the first reason the server cannot honour `spec`; returns the channel that will carry it. */
export function validateSubscription(spec: SubscriptionSpec, deps: SubscriptionRuleDeps, loc: SubscriptionLocations): Channel {
  const topic = deps.topics.get(spec.topic);
  if (!topic) {
    const known = deps.topics.list().map((t) => t.url);
    throw Errors.subscriptionTopicUnknown({ topic: spec.topic, known: [...new Set(known)].join(', ') || '(none)' }, [loc.topic]);
  }
  for (const f of spec.filters) checkFilter(f, topic, loc);

  const channel = deps.channels.resolve(spec.channel.type, spec.channel.custom);
  if (!channel) {
    const custom = spec.channel.custom;
    const name = custom ? `${custom.system ? `${custom.system}|` : ''}${custom.code}` : spec.channel.type;
    throw Errors.subscriptionChannelUnsupported({ channel: name, accepted: deps.channels.describe().join(', ') || '(none)' }, [custom && loc.customChannel ? loc.customChannel : loc.channelType]);
  }
  const refused = channel.checkEndpoint(spec.channel.endpoint);
  if (refused) throw Errors.subscriptionEndpointRefused({ endpoint: spec.channel.endpoint ?? '(none)', reason: refused }, [loc.endpoint]);
  spec.channel.headers.forEach((h, i) => {
    const parsed = parseChannelHeader(h);
    if ('error' in parsed) {
      throw fhirErrorFromIssues(Errors.invalidSubscription, [
        { diagnostics: `${loc.headers}[${i}]: ${parsed.error}; expected 'Name: value' with an HTTP header name that the server does not set itself`, expression: [`${loc.headers}[${i}]`] },
      ]);
    }
  });

  const mime = spec.contentType.split(';')[0].trim().toLowerCase();
  if (channel.checkPayload) {
    // The channel decides what it carries (email: a text/plain or text/html body with an attachment).
    const refusedPayload = channel.checkPayload(spec.contentType, spec.content);
    if (refusedPayload) throw Errors.subscriptionPayloadUnsupported({ element: loc.contentType, value: spec.contentType, reason: refusedPayload }, [loc.contentType]);
  } else if (!SUPPORTED_PAYLOAD_TYPES.includes(mime)) {
    throw Errors.subscriptionPayloadUnsupported({ element: loc.contentType, value: spec.contentType, reason: `Clarion sends FHIR JSON or XML notifications only; accepted: ${SUPPORTED_PAYLOAD_TYPES.join(', ')}` }, [loc.contentType]);
  }
  const versions = deps.notificationVersions ?? DEFAULT_NOTIFICATION_VERSIONS;
  if (!versions.includes(spec.notificationVersion)) {
    throw Errors.subscriptionPayloadUnsupported(
      { element: `${loc.contentType} fhirVersion`, value: spec.notificationVersion, reason: `accepted: ${versions.join(', ')}` },
      [loc.contentType],
    );
  }
  if (!(PAYLOAD_CONTENTS as readonly string[]).includes(spec.content)) {
    throw Errors.subscriptionPayloadUnsupported({ element: loc.content, value: spec.content, reason: `accepted: ${PAYLOAD_CONTENTS.join(', ')}` }, [loc.content]);
  }
  return channel;
}

function filterText(f: SubscriptionFilter): string {
  return `${f.resourceType ? `${f.resourceType}.` : ''}${f.parameter}${f.modifier ? `:${f.modifier}` : ''}=${f.value}`;
}

function allowedList(topic: SubscriptionTopic): string {
  const all = topic.canFilterBy.map((c) => `${c.resource ? `${c.resource}.` : ''}${c.filterParameter}`);
  return all.length ? all.join(', ') : '(the topic allows no filters)';
}

/**
 * A filter is allowed when the topic's canFilterBy lists its parameter (for its resource type, when
 * one is given), its modifier/comparator are listed there, and its value parses as a strict search
 * on every resource type it can apply to (so the trigger evaluator can run it).
 */
function checkFilter(f: SubscriptionFilter, topic: SubscriptionTopic, loc: SubscriptionLocations): void {
  const where = [f.source ?? loc.topic];
  const reject = (reason: string): never => {
    throw Errors.subscriptionFilterNotAllowed({ filter: filterText(f), reason }, where);
  };
  const topicTypes = topicResourceTypes(topic);
  let candidates = topic.canFilterBy.filter((c) => c.filterParameter === f.parameter);
  if (f.resourceType !== undefined) {
    const types = new Set([...topicTypes, ...topic.canFilterBy.flatMap((c) => (c.resource ? [c.resource] : []))]);
    if (!types.has(f.resourceType)) reject(`${f.resourceType} is not a resource type of topic ${topic.url}; accepted: ${[...types].join(', ')}`);
    candidates = candidates.filter((c) => c.resource === undefined || c.resource === f.resourceType);
  }
  if (candidates.length === 0) reject(`topic ${topic.url} does not allow filtering by '${f.parameter}'${f.resourceType ? ` on ${f.resourceType}` : ''}; accepted: ${allowedList(topic)}`);

  if (f.modifier !== undefined) {
    const allowed = new Set(candidates.flatMap((c) => c.modifier));
    // `subject:Patient` is the R5 `type` modifier written as a resource type.
    const code = isR4ResourceType(f.modifier) ? 'type' : f.modifier;
    if (!allowed.has(code)) reject(`the topic does not allow modifier ':${f.modifier}' on '${f.parameter}'; accepted: ${allowed.size ? [...allowed].join(', ') : 'none'}`);
  }

  const evalTypes = f.resourceType !== undefined ? [f.resourceType] : [...new Set(candidates.flatMap((c: CanFilterBy) => (c.resource ? [c.resource] : topicTypes)))];
  const name = f.modifier ? `${f.parameter}:${f.modifier}` : f.parameter;
  const comparators = new Set(candidates.flatMap((c) => c.comparator));
  for (const type of evalTypes) {
    const head = f.parameter.split('.')[0];
    const def = getSearchParam(type, head);
    if (!def?.expression) reject(`'${head}' is not a search parameter of ${type} that Clarion can evaluate (topic-defined filters without a SearchParameter are not supported)`);
    try {
      parseSearchRequest(type, [[name, f.value]], { strict: true });
    } catch (err) {
      if (err instanceof FhirError) reject(err.issues.map((i) => i.diagnostics).join('; '));
      throw err;
    }
    if (def && PREFIXED_TYPES.has(def.type) && !f.parameter.includes('.')) {
      for (const part of f.value.split(',')) {
        const prefix = PREFIXES.find((p) => part.startsWith(p));
        if (prefix && prefix !== 'eq' && !comparators.has(prefix as never)) {
          reject(`the topic does not allow comparator '${prefix}' on '${f.parameter}'; accepted: ${comparators.size ? ['eq', ...comparators].join(', ') : 'eq (no prefix)'}`);
        }
      }
    }
  }
}

/** Status a channel starts in: handshake channels wait for the handshake, the others are usable at once. */
export function initialStatus(channelType: string): 'requested' | 'active' {
  return channelType === 'websocket' || channelType === 'email' ? 'active' : 'requested';
}

export interface ClientStatusInput {
  /** The status the client sent. */
  requested: SubscriptionStatus;
  /** The stored version being replaced (updates only). */
  previous?: { status: SubscriptionStatus; error?: string; channelChanged: boolean };
  channelType: string;
  end?: string;
  now: Date;
}

/**
 * The status (and error text) the server stores for a client write. Clients may send `requested`
 * (activate / re-activate), `off`, or on update the current status unchanged (they PUT back what they
 * read). An `end` in the past turns the subscription off. Changing the channel of a live handshake
 * subscription sends it back to `requested`, so the new endpoint is verified.
 */
export function resolveClientStatus(input: ClientStatusInput, loc: Pick<SubscriptionLocations, 'status'>): { status: SubscriptionStatus; error?: string } {
  const { requested, previous } = input;
  let status: SubscriptionStatus;
  let error: string | undefined;
  if (previous && requested === previous.status) {
    const live = previous.status === 'active' || previous.status === 'error';
    status = live && previous.channelChanged ? initialStatus(input.channelType) : previous.status;
    if (status === previous.status) error = previous.error;
  } else if (requested === 'off') {
    status = 'off';
  } else if (requested === 'requested') {
    status = initialStatus(input.channelType);
  } else {
    const accepted = previous ? `requested, off, or the current status '${previous.status}' unchanged` : 'requested, off';
    throw Errors.subscriptionStatusNotAllowed({ status: requested, accepted }, [loc.status]);
  }
  if (input.end !== undefined && Date.parse(input.end) <= input.now.getTime()) {
    status = 'off';
  }
  return { status, ...(error !== undefined ? { error } : {}) };
}
