/**
 * What a running Clarion offers to the modules wired into it (routes, subscriptions, tests). Kept apart
 * from app.ts, which builds it, so that modules app.ts installs can name it without an import cycle.
 */
import type { FastifyInstance } from 'fastify';
import type pino from 'pino';
import type { ChangeFeed } from '../capture/change-feed.js';
import type { DeliveryWorker } from '../delivery/delivery-worker.js';
import type { WebSocketHub } from '../channels/websocket/websocket-hub.js';
import type { Clock, Db } from '../store/db.js';
import type { RecentSearchIndexes } from '../store/recent-search-indexes.js';
import type { ResourceStore, WriteHook } from '../store/resource-store.js';
import type { EventWriter } from '../subscriptions/event-writer.js';
import type { TopicRegistry } from '../topics/topic-registry.js';
import type { ClarionConfig } from './config.js';
import type { OperationRegistry } from './operations.js';
import type { ChannelRegistry } from '../channels/channel-registry.js';

export interface SubscriptionServices {
  topics: TopicRegistry;
  channels: ChannelRegistry;
}

export interface SubscriptionPipeline {
  services: SubscriptionServices;
  topics: TopicRegistry;
  writer: EventWriter;
  worker: DeliveryWorker;
  /** Websocket connections and their bindings (fan-out of events to bound clients). */
  websocket: WebSocketHub;
  /** Resolves once every change committed before the call has been turned into events. */
  eventsIdle(): Promise<void>;
  close(): Promise<void>;
}

export interface ClarionDeps {
  clock?: Clock;
  /** An already-open database (tests); otherwise opened from config.storage. */
  db?: Db;
  logger?: pino.Logger;
  /**
   * Run the background pipeline (event writer, delivery worker, retention); default true. Tests that
   * seed subscription state directly turn it off so nothing acts on their rows.
   */
  background?: boolean;
  /** The store → matcher hand-over of search indexes (tests observe it); otherwise a new one. */
  recentSearchIndexes?: RecentSearchIndexes;
}

export interface Clarion {
  readonly config: ClarionConfig;
  readonly app: FastifyInstance;
  readonly db: Db;
  readonly store: ResourceStore;
  /** Write hooks by resource type (run on every write path: REST, batch, transaction). */
  readonly hooks: Map<string, WriteHook>;
  readonly feed: ChangeFeed;
  readonly logger: pino.Logger;
  readonly clock: Clock;
  /** The subscription pipeline (topics, event writer, delivery worker). */
  readonly subscriptions: SubscriptionPipeline;
  /** Calls `listener` after every committed write (outside the transaction); returns an unsubscribe. */
  onCommit(listener: () => void): () => void;
  /** Where FHIR operations (`$name`) are registered. */
  readonly operations: OperationRegistry;
  /** Listens on config.host/port; resolves with the FHIR base URL actually served. */
  listen(): Promise<string>;
  /** The public FHIR base URL (config.baseUrl, or derived from the listening address). */
  baseUrl(): string;
  close(): Promise<void>;
}

