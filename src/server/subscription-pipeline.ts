/**
 * Wires topic-based Subscriptions into a running Clarion: the Subscription/topic resource rules, the
 * event writer (change feed → numbered events), the delivery worker (events → channels), $status and
 * $events, and event retention. Wire-version code (R4 Subscription reading, notification rendering) is
 * chosen here and passed into the version-neutral core.
 */
import { randomUUID } from 'node:crypto';
import type { Resource, Subscription } from 'fhir/r4.js';
import { DeliveryWorker } from '../delivery/delivery-worker.js';
import type { NumberedEvents, SubscriptionSource } from '../subscriptions/event-model.js';
import { EventWriter } from '../subscriptions/event-writer.js';
import { InsertTimeEvents } from '../subscriptions/insert-time-events.js';
import type { SubscriptionSpec, SubscriptionStatus } from '../subscriptions/subscription-model.js';
import { SubscriptionMatcher } from '../subscriptions/subscription-matcher.js';
import type { RecentSearchIndexes } from '../store/recent-search-indexes.js';
import { StatisticsRefresh } from '../store/statistics-refresh.js';
import { renderNotification } from '../versions/notification-renderer.js';
import { subscriptionFromR4 } from '../versions/r4/subscription-r4.js';
import { topicFromAnyForm } from '../versions/topic-format.js';
import type { Clarion, SubscriptionPipeline } from './clarion.js';
import { installSubscriptionOperations, startEventRetention } from './subscription-operations.js';
import { installWebSocketChannel } from './websocket-server.js';
import {
  createSubscriptionServices, installSubscriptionResources, isTopicBasic, loadTopicResources, updateSubscriptionState,
} from './subscription-resources.js';

export const DELIVERIES_CHANNEL = 'clarion_deliveries';

/** Reads a stored Subscription leniently: anything the pipeline cannot read gets no events. */
function readSpec(resource: Resource): SubscriptionSpec | undefined {
  try {
    return subscriptionFromR4(resource).spec;
  } catch {
    return undefined;
  }
}

export async function installSubscriptions(
  clarion: Clarion,
  options: { background: boolean; recentSearchIndexes?: RecentSearchIndexes } = { background: true },
): Promise<SubscriptionPipeline> {
  const { config, db, store, logger } = clarion;
  const log = logger.child({ component: 'subscriptions' });
  const services = await createSubscriptionServices(config);
  installSubscriptionResources(clarion, { ...services, clock: clarion.clock });
  await loadTopicResources(store, services.topics);
  installSubscriptionOperations(clarion);
  const websocket = await installWebSocketChannel(clarion);

  const matcher = new SubscriptionMatcher({
    topics: services.topics,
    topicFromResource: (r) => topicFromAnyForm(r),
    onWarning: (message, detail) => log.warn({ detail }, message),
    recentSearchIndexes: options.recentSearchIndexes,
  });
  // Subscriptions can arrive a hundred thousand at once; their state rows' statistics keep up (pg only:
  // PGlite runs no reused plans, and ANALYZE there would run on this process's thread).
  const stateStatistics = db.kind === 'pg' ? new StatisticsRefresh(db, 'subscription_state', (err) => log.warn({ err }, 'ANALYZE subscription_state failed')) : undefined;
  const source: SubscriptionSource = { specFromResource: readSpec, isTopicResource: (r) => isTopicBasic(r) };

  /** This process's NOTIFY payload, so it can ignore its own delivery notifications. */
  const token = randomUUID();
  const worker = new DeliveryWorker({
    db,
    clock: clarion.clock,
    channel: (type, custom) => services.channels.resolve(type, custom),
    loadSubscription: async (id, version) => {
      try {
        return readSpec(await store.vread('Subscription', id, String(version)));
      } catch {
        return undefined; // that version is a deletion
      }
    },
    render: (input, spec) => renderNotification(input, spec),
    setStatus: (id, status, error) => setStatus(clarion, id, status, error),
    baseUrl: () => clarion.baseUrl(),
    retry: config.subscriptions.retry,
    defaultTimeoutSeconds: config.subscriptions.defaultTimeoutSeconds,
    concurrency: config.subscriptions.delivery.concurrency,
    lingerMs: config.subscriptions.delivery.lingerMs,
    onError: (err, subscriptionId) => log.error({ err, subscriptionId }, 'delivery error'),
  });
  const onEvents = (numbered: NumberedEvents): void => {
    if (numbered.subscriptionsChanged) {
      worker.wake();
      stateStatistics?.noteRows(matcher.subscriptionCount);
    }
    worker.noteEvents(numbered);
    websocket.written(numbered);
    db.notify(DELIVERIES_CHANNEL, token).catch((err: unknown) => log.warn({ err }, 'delivery notify failed'));
  };
  const writer = new EventWriter({
    db,
    feed: clarion.feed,
    matcher,
    source,
    clock: clarion.clock,
    handshakeDelayMs: config.subscriptions.handshakeDelayMs,
    onEvents,
    onError: (err) => log.error({ err }, 'event writer error'),
  });
  if (!options.background) {
    return {
      services, topics: services.topics, writer, worker, websocket, eventsIdle: async () => undefined,
      close: async () => {
        await websocket.close();
        await services.channels.close();
      },
    };
  }
  // Other processes' events (and state changes) wake this process's worker and websocket hub too.
  const unlisten = await db.listen(DELIVERIES_CHANNEL, (payload) => {
    if (payload === token) return; // this process's own: acted on when sent
    worker.wake();
    websocket.wake();
  });
  // With a separate pipeline, a `clarion worker` numbers and delivers; this process wakes its websocket
  // hub on the worker's NOTIFYs (above) and reads the events it wrote.
  const separate = config.subscriptions.pipeline === 'separate';
  if (!separate) {
    writer.start();
    worker.start();
    // This process's plain creates number their events as they are stored, with this writer's matcher.
    clarion.store.useInsertCompanion(new InsertTimeEvents({ matcher, state: () => writer.matcherState(), onEvents }));
  }
  const retention = separate ? { stop: async () => undefined } : startEventRetention(clarion, 60_000);

  return {
    services,
    topics: services.topics,
    writer,
    worker,
    websocket,
    eventsIdle: () => writer.idle(),
    async close() {
      clarion.store.useInsertCompanion(undefined);
      await websocket.close();
      await retention.stop();
      await writer.stop();
      await worker.stop();
      await unlisten();
      await services.channels.close();
    },
  };
}

/** A server-originated status change: the Subscription resource and its state row, in one transaction. */
async function setStatus(clarion: Clarion, id: string, status: SubscriptionStatus, error?: { code: string; message: string }): Promise<void> {
  await clarion.store.transaction(async (s) => {
    const written: Subscription = await updateSubscriptionState(s, id, { status, error: status === 'active' ? null : error?.message });
    await s.queryable.query(
      `UPDATE subscription_state SET status = $2, subscription_version = $3, attempts = CASE WHEN $2 = 'active' THEN 0 ELSE attempts END,
          next_attempt_at = NULL, updated_at = now()
        WHERE subscription_id = $1 AND subscription_version < $3`,
      [id, status, Number(written.meta?.versionId ?? 0)],
    );
  });
}
