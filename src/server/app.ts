/**
 * The composition root: opens storage, wires the store, change feed and HTTP routes together, and
 * owns start/stop. Everything is passed in (config, clock), nothing is read from globals.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { ChangeFeed } from '../capture/change-feed.js';
import { systemClock } from '../store/db.js';
import { openDb } from '../store/open-db.js';
import { RecentSearchIndexes } from '../store/recent-search-indexes.js';
import { ResourceStore, type WriteHook } from '../store/resource-store.js';
import type { ClarionConfig } from './config.js';
import { registerFhirRoutes } from './fhir-routes.js';
import { frameworkErrorHandler } from './http-errors.js';
import { subscriptionCapabilityProvider } from './subscription-resources.js';
import { installSubscriptions } from './subscription-pipeline.js';
import type { Clarion, ClarionDeps, SubscriptionPipeline } from './clarion.js';

export type { Clarion, ClarionDeps } from './clarion.js';

export async function createClarion(config: ClarionConfig, deps: ClarionDeps = {}): Promise<Clarion> {
  const logger = deps.logger ?? pino({ level: config.logLevel });
  const clock = deps.clock ?? systemClock;
  const ownsDb = !deps.db;
  const db = deps.db ?? (await openDb(config.storage, (err) => logger.warn({ err }, 'database connection error')));
  const feed = new ChangeFeed(db, {
    pollIntervalMs: config.feed.pollIntervalMs,
    onError: (err, consumer) => logger.error({ err, consumer }, 'change feed error'),
  });
  await feed.start();
  // Write hooks by resource type; features register theirs (e.g. Subscription validation).
  const hooks = new Map<string, WriteHook>();
  const commitListeners = new Set<() => void>();
  // Written by the store, read by this process's subscription matcher (one instance for both).
  const recentSearchIndexes = deps.recentSearchIndexes ?? new RecentSearchIndexes();
  const store = ResourceStore.create(db, {
    clock,
    hooks,
    recentSearchIndexes,
    // This process's feed consumers take its own creates without reading them back.
    versionCommitted: (version) => feed.offer(version),
    afterCommit: () => {
      feed.changed();
      for (const l of commitListeners) l();
    },
  });

  let listeningBase: string | undefined;
  const baseUrl = (): string => config.baseUrl ?? listeningBase ?? `http://${config.host}:${config.port}/fhir`;

  // The pino child logger makes fastify's instance generic over its logger type; the rest of the code
  // only needs the base logger interface.
  const app = Fastify({
    // Per-request lines are info-level noise at thousands of requests a second; errors still log.
    loggerInstance: logger.child({ component: 'http' }, { level: logger.level === 'silent' ? 'silent' : 'warn' }),
    bodyLimit: config.bodyLimit,
    // FHIR ids and operation names are case-sensitive; keep the path as sent.
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: true },
    // Errors fastify raises before routing (e.g. malformed percent-encoding) are OperationOutcomes too.
    frameworkErrors: frameworkErrorHandler(config.bodyLimit, logger),
  }) as unknown as FastifyInstance;
  let subscriptions: SubscriptionPipeline | undefined;
  const { operations } = await registerFhirRoutes(app, {
    store,
    config,
    baseUrl,
    clock,
    logger,
    subscriptionCapability: () => subscriptionCapabilityProvider(subscriptions!.topics)(),
  });

  let closed = false;
  const clarion: Clarion = {
    config,
    app,
    db,
    store,
    hooks,
    feed,
    logger,
    clock,
    get subscriptions(): SubscriptionPipeline {
      if (!subscriptions) throw new Error('subscriptions are not installed yet');
      return subscriptions;
    },
    onCommit(listener) {
      commitListeners.add(listener);
      return () => commitListeners.delete(listener);
    },
    operations,
    baseUrl,
    async listen() {
      const address = await app.listen({ host: config.host, port: config.port });
      const u = new URL(address);
      if (u.hostname === '0.0.0.0' || u.hostname === '[::]') u.hostname = '127.0.0.1';
      listeningBase = `${u.origin}/fhir`;
      return baseUrl();
    },
    async close() {
      if (closed) return;
      closed = true;
      await subscriptions?.close();
      await app.close();
      await feed.close();
      if (ownsDb) await db.close();
    },
  };
  try {
    subscriptions = await installSubscriptions(clarion, { background: deps.background ?? true, recentSearchIndexes });
  } catch (err) {
    await clarion.close();
    throw err;
  }
  return clarion;
}
