/**
 * The delivery worker: claims subscriptions with due work (delivery-queue.ts) and carries their
 * notifications — handshake, event notifications in event order (up to maxCount events each),
 * heartbeats — over their channel. Failures are retried with exponential backoff and jitter, capped;
 * after the configured number of attempts the subscription turns `error` (visible in $status), its
 * events stay numbered and logged, and nothing is dropped: once the client re-activates it, delivery
 * resumes from the first undelivered event.
 */
import { randomUUID } from 'node:crypto';
import type { Resource } from 'fhir/r4.js';
import type { Channel, DeliveryResult, RenderedNotification } from '../channels/channel.js';
import type { NotificationEventInput, NotificationInput, NotificationType } from '../notify/notification-model.js';
import { WakeableSleep } from '../capture/wakeable-sleep.js';
import type { Clock, Db } from '../store/db.js';
import type { SubscriptionSpec, SubscriptionStatus } from '../subscriptions/subscription-model.js';
import { HANDSHAKE_CHANNELS, type StateRow } from '../subscriptions/subscription-state.js';
import { claimDue, eventsFrom, nextDueAt, recordDelivered, recordFailure, releaseLease, type StoredEvent } from './delivery-queue.js';
import { retryDelayMs } from './retry-policy.js';

export interface DeliveryWorkerDeps {
  db: Db;
  clock: Clock;
  /** The channel for a base channel code, or for the custom channel (backport-channel-type) when given. */
  channel(type: string, custom?: { system?: string; code: string }): Channel | undefined;
  /**
   * The subscription as the client defined it at `version` (the version its state row reflects), or
   * undefined if it cannot be read. Results are cached per (id, version).
   */
  loadSubscription(id: string, version: number): Promise<SubscriptionSpec | undefined>;
  /** Wire form of a notification for this subscription (version, MIME type). */
  render(input: NotificationInput, spec: SubscriptionSpec): RenderedNotification;
  /** Server-originated status change: writes the Subscription resource and its state row. */
  setStatus(id: string, status: SubscriptionStatus, error?: { code: string; message: string }): Promise<void>;
  baseUrl(): string;
  retry: { initialDelayMs: number; maxDelayMs: number; maxAttempts: number };
  defaultTimeoutSeconds: number;
  /** Subscriptions worked on at once (each still one notification at a time). */
  concurrency?: number;
  /** Safety-net poll (ms); timed work (retries, heartbeats) also sets its own wake-up. */
  pollIntervalMs?: number;
  random?: () => number;
  onError?: (err: unknown, subscriptionId?: string) => void;
}

/** Keep a lease this much longer than one attempt may take. */
const LEASE_MARGIN_MS = 2000;
/** Events read from the log at a time (then sent maxCount per notification). */
const PREFETCH = 200;
const SPEC_CACHE_SIZE = 10_000;

export class DeliveryWorker {
  readonly owner = `worker-${randomUUID()}`;
  private stopped = true;
  private running?: Promise<void>;
  private wakeRequested = false;
  private readonly sleeper = new WakeableSleep(true);
  /** Whether the last claim took as many subscriptions as allowed (there may be more waiting). */
  private lastClaimFull = false;
  private readonly specs = new Map<string, { version: number; spec: SubscriptionSpec }>();

  constructor(private readonly deps: DeliveryWorkerDeps) {}

  private async spec(state: StateRow): Promise<SubscriptionSpec | undefined> {
    const hit = this.specs.get(state.subscriptionId);
    if (hit && hit.version === state.subscriptionVersion) return hit.spec;
    const spec = await this.deps.loadSubscription(state.subscriptionId, state.subscriptionVersion);
    if (spec) {
      if (this.specs.size >= SPEC_CACHE_SIZE) this.specs.delete(this.specs.keys().next().value as string);
      this.specs.set(state.subscriptionId, { version: state.subscriptionVersion, spec });
    }
    return spec;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.running = this.loop();
  }

  /** New events or a state change: look for work now. */
  wake(): void {
    this.wakeRequested = true;
    this.sleeper.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    await this.running;
  }

  private async loop(): Promise<void> {
    const poll = this.deps.pollIntervalMs ?? 1000;
    while (!this.stopped) {
      this.wakeRequested = false;
      let claimed = 0;
      try {
        claimed = await this.runOnce();
      } catch (err) {
        this.deps.onError?.(err);
      }
      if (this.stopped) break;
      // After a full claim there may be more due work; after a partial one, only new events (a wake-up)
      // or timed work (below) can bring more.
      if ((claimed > 0 && this.lastClaimFull) || this.wakeRequested) continue;
      let wait = poll;
      try {
        const due = await nextDueAt(this.deps.db);
        if (due) wait = Math.max(1, Math.min(poll, due.getTime() - this.deps.clock.now().getTime() + 1));
      } catch (err) {
        this.deps.onError?.(err);
      }
      if (this.wakeRequested || this.stopped) continue;
      await this.sleeper.sleep(wait);
    }
  }

  /** Claims due subscriptions and works on them; returns how many were claimed. */
  async runOnce(): Promise<number> {
    const now = this.deps.clock.now();
    const lease = new Date(now.getTime() + this.deps.defaultTimeoutSeconds * 1000 + LEASE_MARGIN_MS);
    const claimed = await claimDue(this.deps.db, this.owner, now, lease, this.deps.concurrency ?? 16);
    await Promise.all(
      claimed.map(async (state) => {
        let released = false;
        try {
          released = await this.work(state);
        } catch (err) {
          this.deps.onError?.(err, state.subscriptionId);
        } finally {
          if (!released) await releaseLease(this.deps.db, this.owner, state.subscriptionId).catch((err: unknown) => this.deps.onError?.(err, state.subscriptionId));
        }
      }),
    );
    this.lastClaimFull = claimed.length >= (this.deps.concurrency ?? 16);
    return claimed.length;
  }

  /** Works on one claimed subscription; true if the lease was already released on the way. */
  private async work(state: StateRow): Promise<boolean> {
    const now = this.deps.clock.now();
    const spec = await this.spec(state);
    if (!spec) return false; // unreadable or deleted: the event writer turns its state off
    if (state.endAt && state.endAt.getTime() <= now.getTime() && state.status !== 'off') {
      await this.deps.setStatus(spec.id, 'off');
      return false;
    }
    const channel = this.deps.channel(spec.channel.type, spec.channel.custom);
    if (!channel) return false;
    if (state.status === 'requested' && HANDSHAKE_CHANNELS.includes(state.channelType)) {
      await this.handshake(state, spec, channel);
      return false;
    }
    if (state.status === 'active' && state.deliveredThrough < state.eventsSinceStart) {
      const outcome = await this.deliverEvents(state, spec, channel);
      if (outcome !== 'failed') return outcome === 'released';
    }
    if (state.heartbeatPeriod !== null && (state.status === 'active' || state.status === 'error')) {
      const last = state.lastSentAt ?? now;
      if (now.getTime() - last.getTime() >= state.heartbeatPeriod * 1000 || !state.lastSentAt) await this.heartbeat(state, spec, channel);
    }
    return false;
  }

  private timeoutMs(spec: SubscriptionSpec): number {
    return (spec.channel.timeout ?? this.deps.defaultTimeoutSeconds) * 1000;
  }

  private leaseUntil(spec: SubscriptionSpec): Date {
    return new Date(this.deps.clock.now().getTime() + this.timeoutMs(spec) + LEASE_MARGIN_MS);
  }

  private send(channel: Channel, spec: SubscriptionSpec, type: NotificationType, eventsSince: number, status: SubscriptionStatus, events: NotificationEventInput[] = []): Promise<DeliveryResult> {
    const input: NotificationInput = {
      subscription: { id: spec.id, topicUrl: spec.topic, status, content: spec.content },
      type,
      eventsSinceSubscriptionStart: eventsSince,
      events,
      baseUrl: this.deps.baseUrl(),
    };
    const rendered = this.deps.render(input, spec);
    return channel.deliver({ subscriptionId: spec.id, endpoint: spec.channel.endpoint, headers: spec.channel.headers, timeoutMs: this.timeoutMs(spec) }, rendered);
  }

  private async handshake(state: StateRow, spec: SubscriptionSpec, channel: Channel): Promise<void> {
    const result = await this.send(channel, spec, 'handshake', state.eventsSinceStart, 'requested');
    if (result.ok) {
      await recordDelivered(this.deps.db, this.owner, spec.id, { sentAt: this.deps.clock.now(), leaseUntil: this.leaseUntil(spec) });
      await this.deps.setStatus(spec.id, 'active');
      return;
    }
    await this.failed(state, spec, result, false);
  }

  /**
   * Delivers undelivered events in order while the lease holds: 'released' when it caught up (the lease
   * was released with the last progress update), 'held' when it stopped otherwise, 'failed' on a failure.
   */
  private async deliverEvents(state: StateRow, spec: SubscriptionSpec, channel: Channel): Promise<'released' | 'held' | 'failed'> {
    const maxCount = spec.channel.maxCount ?? 1;
    let through = state.deliveredThrough;
    let target = state.eventsSinceStart;
    let buffer: StoredEvent[] = [];
    while (!this.stopped && through < target) {
      if (buffer.length === 0) buffer = await eventsFrom(this.deps.db, spec.id, through + 1, target, Math.max(PREFETCH, maxCount));
      if (buffer.length === 0) {
        // Pruned by retention before delivery: nothing is left to send up to target.
        const now = await recordDelivered(this.deps.db, this.owner, spec.id, { deliveredThrough: target, sentAt: state.lastSentAt ?? this.deps.clock.now(), leaseUntil: this.leaseUntil(spec) });
        if (now === undefined) return 'held';
        through = target;
        target = now.eventsSinceStart;
        continue;
      }
      const events = buffer.splice(0, maxCount);
      const last = events[events.length - 1].eventNumber;
      const result = await this.send(channel, spec, 'event-notification', last, 'active', await this.eventInputs(spec, events));
      if (!result.ok) {
        await this.failed(state, spec, result, true);
        return 'failed';
      }
      through = last;
      const progress = await recordDelivered(this.deps.db, this.owner, spec.id, { deliveredThrough: through, sentAt: this.deps.clock.now(), leaseUntil: this.leaseUntil(spec), releaseIfCaughtUp: true });
      if (progress === undefined) return 'held'; // lease lost: another worker continues
      if (progress.released) return 'released';
      // Events that arrived meanwhile are delivered in the same lease.
      target = progress.eventsSinceStart;
    }
    return 'held';
  }

  private async heartbeat(state: StateRow, spec: SubscriptionSpec, channel: Channel): Promise<void> {
    const result = await this.send(channel, spec, 'heartbeat', state.eventsSinceStart, state.status);
    if (result.ok) {
      await recordDelivered(this.deps.db, this.owner, spec.id, { sentAt: this.deps.clock.now(), leaseUntil: this.leaseUntil(spec) });
    } else if (state.status === 'active') {
      await this.failed(state, spec, result, true);
    } else {
      // Already in error: note the attempt so the next heartbeat waits a full period.
      await recordFailure(this.deps.db, this.owner, spec.id, { code: result.code, message: result.message, at: this.deps.clock.now(), attempts: state.attempts, retryAt: null, countsAsSent: true });
    }
  }

  private async failed(state: StateRow, spec: SubscriptionSpec, result: Exclude<DeliveryResult, { ok: true }>, countsAsSent: boolean): Promise<void> {
    const now = this.deps.clock.now();
    const attempts = state.attempts + 1;
    const message = result.message;
    const giveUp = attempts >= this.deps.retry.maxAttempts || result.code === 'endpoint-refused';
    const retryAt = giveUp ? null : new Date(now.getTime() + retryDelayMs(attempts, this.deps.retry, this.deps.random));
    await recordFailure(this.deps.db, this.owner, spec.id, { code: result.code, message, at: now, attempts, retryAt, countsAsSent });
    if (giveUp) {
      await this.deps.setStatus(spec.id, 'error', {
        code: result.code,
        message: `${state.status === 'requested' ? 'handshake' : 'delivery'} failed after ${attempts} attempt(s): ${message}`,
      });
    }
  }

  /** Events with focus (and, for full-resource, content) per the subscription's content level. */
  private async eventInputs(spec: SubscriptionSpec, events: StoredEvent[]): Promise<NotificationEventInput[]> {
    const contents = new Map<string, Resource>();
    if (spec.content === 'full-resource') {
      const { rows } = await this.deps.db.query<{ resource_type: string; id: string; version_id: number; content: string }>(
        `SELECT h.resource_type, h.id, h.version_id, h.content FROM resource_history h
           JOIN unnest($1::text[], $2::text[], $3::int[]) AS k(t, i, v) ON h.resource_type = k.t AND h.id = k.i AND h.version_id = k.v
          WHERE h.content IS NOT NULL`,
        [events.map((e) => e.focusType), events.map((e) => e.focusId), events.map((e) => e.focusVersion)],
      );
      for (const r of rows) contents.set(`${r.resource_type}/${r.id}/${r.version_id}`, JSON.parse(r.content) as Resource);
      const refs = [...new Set(events.flatMap((e) => e.additionalContext.map((c) => c.reference)))];
      if (refs.length > 0) {
        const { rows: ctx } = await this.deps.db.query<{ resource_type: string; id: string; content: string }>(
          `SELECT r.resource_type, r.id, r.content FROM resources r
             JOIN unnest($1::text[]) AS k(ref) ON r.resource_type || '/' || r.id = k.ref WHERE r.deleted = false`,
          [refs],
        );
        for (const r of ctx) contents.set(`${r.resource_type}/${r.id}`, JSON.parse(r.content) as Resource);
      }
    }
    return events.map((e) => ({
      eventNumber: e.eventNumber,
      timestamp: e.occurredAt.toISOString(),
      focus: {
        reference: `${e.focusType}/${e.focusId}`,
        interaction: e.interaction,
        ...(contents.has(`${e.focusType}/${e.focusId}/${e.focusVersion}`) ? { resource: contents.get(`${e.focusType}/${e.focusId}/${e.focusVersion}`) as never } : {}),
      },
      additionalContext: e.additionalContext.map((c) => ({
        reference: c.reference,
        ...(contents.has(c.reference) ? { resource: contents.get(c.reference) as never } : {}),
      })),
    }));
  }
}
