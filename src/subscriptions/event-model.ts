/**
 * What the event writer, the matcher and whoever delivers share: a change as the matcher sees it, a
 * match, the matcher's interface, and the numbered events handed on after a commit.
 */
import type { Resource } from 'fhir/r4.js';
import type { SearchIndex } from '../fhir/search/types.js';
import type { Queryable } from '../store/db.js';
import type { SubscriptionSpec } from './subscription-model.js';

/** A change with its content, as the matcher sees it. */
export interface MatchableChange {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  interaction: 'create' | 'update' | 'delete';
  lastUpdated: Date;
  previous?: Resource;
  current?: Resource;
  /** The current version's search index when the caller has it (else taken from RecentSearchIndexes or extracted). */
  currentIndex?: SearchIndex;
}

export interface EventMatch {
  subscriptionId: string;
  /** The pipeline channel code (pipelineChannelType: the base code, or `custom:<base>`): whoever delivers is told which events are theirs. */
  channelType: string;
  /** References (`Type/id`) of additional-context resources (the topic's notificationShape). */
  additionalContext: string[];
}

/** Decides which subscriptions a change triggers (topics, triggers, filters: see subscription-matcher.ts). */
export interface Matcher {
  /** Resource types any topic triggers on (other changes are skipped without loading content). */
  triggerTypes(): ReadonlySet<string>;
  /** Adds or replaces a subscription; only `active`/`error` subscriptions get events. */
  upsertSubscription(spec: SubscriptionSpec): void;
  removeSubscription(id: string): void;
  /** A topic carried by a resource (R4 Basic-wrapped) was created, updated or deleted. */
  topicResourceChanged(resource: Resource | undefined, id: string): void;
  match(change: MatchableChange, q: Queryable): Promise<EventMatch[]>;
  /** Forget everything (before a rebuild). */
  clear(): void;
}

/** Reads stored resources into the neutral forms (wire-version specific, so passed in). */
export interface SubscriptionSource {
  specFromResource(resource: Resource): SubscriptionSpec | undefined;
  /** True if the resource is a topic definition (e.g. an R4 Basic-wrapped SubscriptionTopic). */
  isTopicResource(resource: Resource): boolean;
}

/** An event as stored in the log, with its number. */
export interface NumberedEvent {
  eventNumber: number;
  occurredAt: Date;
  focusType: string;
  focusId: string;
  focusVersion: number;
  interaction: 'create' | 'update' | 'delete';
  additionalContext: { reference: string }[];
}

/** The event `match` makes of `change`, as numbered `eventNumber`. */
export function numberedEvent(change: MatchableChange, match: EventMatch, eventNumber: number): NumberedEvent {
  return {
    eventNumber,
    occurredAt: change.lastUpdated,
    focusType: change.resourceType,
    focusId: change.id,
    focusVersion: change.versionId,
    interaction: change.interaction,
    additionalContext: match.additionalContext.map((reference) => ({ reference })),
  };
}

/** The events one committed batch numbered, per subscription (oldest first), and their channel types. */
export class NumberedEvents {
  readonly bySubscription = new Map<string, { channelType: string; events: NumberedEvent[] }>();
  /** True if subscriptions changed in the batch (handshakes may be due). */
  subscriptionsChanged = false;

  get size(): number {
    return this.bySubscription.size;
  }
}

/** Thrown by NO_QUERIES: matching this batch needs the database, so it takes a transaction. */
export class NeedsQueries extends Error {}
/** A Queryable for matching without the database: any query throws NeedsQueries. */
export const NO_QUERIES: Queryable = {
  query: () => Promise.reject(new NeedsQueries('this batch needs queries to match')),
  exec: () => Promise.reject(new NeedsQueries('this batch needs queries to match')),
};

/** What the matcher reflects, for matching outside a batch (insert-time-events.ts). */
export interface MatcherState {
  /** Every Subscription and topic change up to this sequence number is applied, none after it. */
  seq: number;
  /** Changes whenever the matcher's subscriptions or topics change. */
  generation: number;
}
