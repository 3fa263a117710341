/**
 * Wires the Subscription resource side into a Clarion: write hooks that make every write path (REST,
 * batch, transaction, conditional) accept only Subscriptions the server can honour and keep the
 * server-owned fields (`status`, `error`) in the server's hands; the same for R4 Basic-wrapped
 * SubscriptionTopics; and the helpers the delivery side and the change-feed consumer call.
 *
 * Server-originated writes (the delivery engine moving a Subscription to active/error/off): build the
 * new resource, pass it through `serverWrite(resource)` and write it with `store.update` — or call
 * `updateSubscriptionState(store, id, { status, error })`, which does that with optimistic locking.
 * `serverWrite` tags the object with a symbol-keyed marker: object spread (the store copies resources)
 * keeps it, JSON never carries it (clients cannot forge it, it is never stored), and the hook removes
 * it. A write without the marker is a client write and gets the client rules.
 *
 * Basic topics: the hook only validates (a topic the registry would refuse, or one whose url|version is
 * already registered from elsewhere, fails the write). The registry is changed only after the write
 * commits, by `syncTopicFromResource`, which the change-feed consumer calls for every Basic change (and
 * `loadTopicResources` at start-up for the Basic topics already stored). The registry therefore lags the
 * database by the feed's latency; a Subscription naming a topic created a moment ago may be refused
 * until the feed has seen the topic.
 */
import type { Basic, Resource, Subscription } from 'fhir/r4.js';
import { ChannelRegistry } from '../channels/channel-registry.js';
import { EmailChannel, smtpTransport } from '../channels/email-channel.js';
import { EndpointGuard } from '../channels/endpoint-guard.js';
import { MessageChannel } from '../channels/message-channel.js';
import { RestHookChannel } from '../channels/rest-hook-channel.js';
import { WebSocketChannel } from '../channels/websocket/websocket-channel.js';
import { isR4ResourceType } from '../fhir/definitions.js';
import { Errors, FhirError } from '../fhir/errors.js';
import { parseSearchRequest } from '../fhir/search/parse.js';
import { systemClock, type Clock } from '../store/db.js';
import type { ResourceStore, WriteHook } from '../store/resource-store.js';
import { maskChannelHeaders, OWNER_VIEWER, type SubscriptionViewer } from '../subscriptions/channel-header-masking.js';
import type { SubscriptionStatus } from '../subscriptions/subscription-model.js';
import { resolveClientStatus, validateSubscription, type NotificationVersion } from '../subscriptions/subscription-rules.js';
import { topicKey, type SubscriptionTopic } from '../topics/topic-model.js';
import { createTopicRegistry, type TopicRegistry } from '../topics/topic-registry.js';
import { FHIR_TYPES_SYSTEM } from '../versions/r4/basic-topic-extensions.js';
import { R4_STATUSES, subscriptionFromR4, subscriptionToR4 } from '../versions/r4/subscription-r4.js';
import { topicFromAnyForm } from '../versions/topic-format.js';
import type { Clarion, SubscriptionServices } from './clarion.js';
import type { SubscriptionCapability } from './capability-statement.js';
import type { ClarionConfig } from './config.js';

export type { SubscriptionServices };

export interface SubscriptionResourceDeps extends SubscriptionServices {
  /** For `end` in the past (turns the subscription off); default the system clock. */
  clock?: Clock;
  /** Notification versions accepted in `channel.payload; fhirVersion=`; default R4 and R4B. */
  notificationVersions?: readonly NotificationVersion[];
}

/**
 * The topic registry (built-ins + config.subscriptions.topicsDir) and the channels: rest-hook and
 * message behind the endpoint guard, and email when an SMTP server is configured (without one, email
 * Subscriptions are refused at create with CLARION_SUBSCRIPTION_CHANNEL rather than accepted and never
 * sent). Custom channels are registered here too: `channels.register(new MyChannel(), { system, code })`.
 */
export async function createSubscriptionServices(config: ClarionConfig): Promise<SubscriptionServices> {
  const topics = await createTopicRegistry({
    parse: topicFromAnyForm,
    isSupportedResourceType: isR4ResourceType,
    ...(config.subscriptions.topicsDir !== undefined ? { directory: config.subscriptions.topicsDir } : {}),
  });
  const channels = new ChannelRegistry();
  const guard = new EndpointGuard({ allow: config.subscriptions.endpointAllow, allowHttp: config.subscriptions.allowHttp });
  channels.register(new RestHookChannel({ guard }));
  channels.register(new WebSocketChannel());
  channels.register(new MessageChannel({ guard }));
  const smtp = config.subscriptions.smtp;
  if (smtp) channels.register(new EmailChannel({ transport: smtpTransport(smtp), from: smtp.from }));
  return { topics, channels };
}

/** Registers the Subscription and Basic-topic write hooks on `clarion` (composing with an existing Basic hook). */
export function installSubscriptionResources(clarion: Clarion, deps: SubscriptionResourceDeps): void {
  clarion.hooks.set('Subscription', subscriptionWriteHook(deps));
  clarion.hooks.set('Basic', chainHooks(clarion.hooks.get('Basic'), topicBasicWriteHook(deps.topics)));
}

// -------------------------------------------------------------------------------------------------
// Server-originated writes

const SERVER_WRITE = Symbol('clarion.serverWrite');

/** A copy of `resource` marked as written by the server itself (status/error changes bypass the client rules). */
export function serverWrite<T extends Resource>(resource: T): T {
  return { ...resource, [SERVER_WRITE]: true };
}

function isServerWrite(resource: Resource): boolean {
  return (resource as unknown as Record<symbol, unknown>)[SERVER_WRITE] === true;
}

function withoutMarker<T extends Resource>(resource: T): T {
  const copy = { ...resource } as T & Record<symbol, unknown>;
  delete copy[SERVER_WRITE];
  return copy;
}

/**
 * Sets the server-owned state of a stored Subscription (`error: null` clears it). Retries on a
 * concurrent write (a client update in between wins its own fields; this re-applies only status/error).
 */
export async function updateSubscriptionState(
  store: ResourceStore,
  id: string,
  change: { status?: SubscriptionStatus; error?: string | null },
): Promise<Subscription> {
  for (let attempt = 0; ; attempt++) {
    const cur = await store.current('Subscription', id);
    if (!cur) throw Errors.notFound({ type: 'Subscription', id });
    if (cur.deleted || !cur.resource) throw Errors.gone({ type: 'Subscription', id });
    const { error: oldError, ...rest } = cur.resource as Subscription;
    const error = change.error === undefined ? oldError : change.error ?? undefined;
    const next: Subscription = { ...rest, ...(change.status ? { status: change.status } : {}), ...(error !== undefined ? { error } : {}) };
    try {
      return (await store.update(serverWrite(next), { ifMatch: cur.versionId })).resource as Subscription;
    } catch (err) {
      if (!(err instanceof FhirError) || err.code !== Errors.versionConflict.code || attempt >= 5) throw err;
    }
  }
}

// -------------------------------------------------------------------------------------------------
// Subscription hook

/** Canonical JSON (sorted keys), so that a channel PUT back with reordered keys is not a change. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

export function subscriptionWriteHook(deps: SubscriptionResourceDeps): WriteHook {
  const clock = deps.clock ?? systemClock;
  return {
    beforeWrite({ resource, previous }) {
      if (isServerWrite(resource)) {
        const status = (resource as Subscription).status;
        if (!R4_STATUSES.includes(status)) throw new Error(`server write of Subscription/${resource.id} with invalid status ${String(status)}`);
        return withoutMarker(resource);
      }
      const { spec, locations } = subscriptionFromR4(resource);
      const prev = previous as Subscription | undefined;
      const { status, error } = resolveClientStatus(
        {
          requested: spec.status,
          ...(prev
            ? { previous: { status: prev.status, ...(prev.error !== undefined ? { error: prev.error } : {}), channelChanged: canonical(prev.channel) !== canonical((resource as Subscription).channel) } }
            : {}),
          channelType: spec.channel.type,
          ...(spec.end !== undefined ? { end: spec.end } : {}),
          now: clock.now(),
        },
        locations,
      );
      validateSubscription(spec, { topics: deps.topics, channels: deps.channels, ...(deps.notificationVersions ? { notificationVersions: deps.notificationVersions } : {}) }, locations);
      const { error: _clientError, ...rest } = spec;
      return subscriptionToR4({ ...rest, status, ...(error !== undefined ? { error } : {}) }, resource as Subscription);
    },
  };
}

/**
 * A Subscription as `viewer` may see it (header values masked for non-owners). Reads, vreads,
 * searches and history of Subscription will call this once Clarion has users; today every client is
 * the owner (OWNER_VIEWER) and the resource is returned unchanged.
 */
export function presentSubscription(resource: Subscription, viewer: SubscriptionViewer = OWNER_VIEWER): Subscription {
  if (viewer.isOwner) return resource;
  try {
    const { spec } = subscriptionFromR4(resource);
    return subscriptionToR4(maskChannelHeaders(spec, viewer), resource);
  } catch {
    // Stored before validation existed, or not readable: hide every header rather than leak one.
    const { header: _h, ...channel } = resource.channel ?? {};
    return { ...resource, channel };
  }
}

// -------------------------------------------------------------------------------------------------
// Basic-wrapped topics (IG 1.2.0-ballot R4 representation)

export function isTopicBasic(resource: Resource | undefined): resource is Basic {
  return resource?.resourceType === 'Basic' && ((resource as Basic).code?.coding ?? []).some((c) => c.system === FHIR_TYPES_SYSTEM && c.code === 'SubscriptionTopic');
}

const sourceOfBasic = (id: string | undefined) => `Basic/${id ?? ''}`;

export function topicBasicWriteHook(topics: TopicRegistry): WriteHook {
  return {
    beforeWrite({ resource }) {
      if (!isTopicBasic(resource)) return resource;
      const source = sourceOfBasic(resource.id);
      const topic = topics.parse({ source, json: resource });
      const key = topicKey(topic.url, topic.version);
      const same = topics.versions(topic.url).find((t) => t.version === topic.version);
      const owner = same ? topics.sourceOf(key) : undefined;
      if (owner !== undefined && owner !== source) throw Errors.duplicateTopic({ key, first: owner, second: source }, ['Basic']);
      return resource;
    },
  };
}

export interface TopicResourceChange {
  resourceType: string;
  id: string;
  /** The new version; absent when the resource was deleted. */
  resource?: Resource;
}

export interface TopicSyncResult {
  removed: SubscriptionTopic[];
  added?: SubscriptionTopic;
  /** Set when a stored Basic topic cannot be read (it stays out of the registry). */
  error?: FhirError;
}

/**
 * Applies a committed change of a resource to the topic registry: a Basic topic is (re)registered
 * under source `Basic/<id>`, replacing what that Basic registered before; a deleted one, or a Basic
 * that is no longer a topic, is removed. Other resources are ignored. Call after commit only (the
 * change-feed consumer does).
 */
export function syncTopicFromResource(topics: TopicRegistry, change: TopicResourceChange): TopicSyncResult {
  if (change.resourceType !== 'Basic') return { removed: [] };
  const source = sourceOfBasic(change.id);
  const removed = topics.removeBySource(source);
  if (!isTopicBasic(change.resource)) return { removed };
  try {
    const topic = topics.parse({ source, json: change.resource });
    topics.add(topic, source);
    return { removed, added: topic };
  } catch (err) {
    if (err instanceof FhirError) return { removed, error: err };
    throw err;
  }
}

/** Registers every stored Basic topic (start-up, before the feed consumer takes over). Returns how many. */
export async function loadTopicResources(store: ResourceStore, topics: TopicRegistry): Promise<number> {
  let n = 0;
  let cursor: string | undefined;
  do {
    const params: [string, string][] = [['code', `${FHIR_TYPES_SYSTEM}|SubscriptionTopic`], ['_count', '500']];
    if (cursor) params.push(['_cursor', cursor]);
    const page = await store.search(parseSearchRequest('Basic', params, { strict: true }));
    for (const e of page.entries) {
      if (e.mode !== 'match' || !e.resource.id) continue;
      if (syncTopicFromResource(topics, { resourceType: 'Basic', id: e.resource.id, resource: e.resource }).added) n++;
    }
    cursor = page.nextCursor;
  } while (cursor);
  return n;
}

/** What GET /metadata declares about Subscriptions: pass to registerFhirRoutes as `subscriptionCapability`. */
export function subscriptionCapabilityProvider(topics: TopicRegistry): () => SubscriptionCapability {
  return () => ({ topics: [...new Set(topics.list().map((t) => t.url))] });
}

function chainHooks(first: WriteHook | undefined, second: WriteHook): WriteHook {
  if (!first) return second;
  return {
    async beforeWrite(ctx) {
      const r = first.beforeWrite ? await first.beforeWrite(ctx) : ctx.resource;
      return second.beforeWrite ? second.beforeWrite({ ...ctx, resource: r }) : r;
    },
    async beforeDelete(ctx) {
      await first.beforeDelete?.(ctx);
      await second.beforeDelete?.(ctx);
    },
  };
}
