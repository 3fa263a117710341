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
import type { NumberedEvents } from '../subscriptions/event-model.js';
import type { SubscriptionSpec, SubscriptionStatus } from '../subscriptions/subscription-model.js';
import { CONNECTION_CHANNELS, HANDSHAKE_CHANNELS, type StateRow } from '../subscriptions/subscription-state.js';
import { claimDue, eventsFrom, extendLease, nextDueAt, recordDelivered, recordFailure, releaseLease, type StoredEvent } from './delivery-queue.js';
import { ProgressRecorder } from './progress-recorder.js';
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
  /** How long a caught-up job keeps its subscription for more events before releasing it (ms; 0 = not). */
  lingerMs?: number;
  /** Least time between a streaming job's progress updates (ms; 0 = one per notification unless one is in flight). */
  progressIntervalMs?: number;
  random?: () => number;
  onError?: (err: unknown, subscriptionId?: string) => void;
}

/** Keep a lease this much longer than one attempt may take. */
const LEASE_MARGIN_MS = 2000;
/** Events read from the log at a time (then sent maxCount per notification). */
const PREFETCH = 200;
/** Events handed over in process that a job buffers at most (beyond, it reads the log again). */
const MAX_BUFFERED = 5_000;
const SPEC_CACHE_SIZE = 10_000;
/**
 * A caught-up job waits this long for more events before it releases its subscription. Under a steady
 * stream the next events then go out at once, without a claim, a state read and a release per
 * notification (each a round trip that waits its turn on a busy event loop).
 */
const DEFAULT_LINGER_MS = 50;
/**
 * A streaming job records its progress at most this often (ProgressRecorder). A crash re-sends at most
 * this much more than it would anyway; in return a stream of small notifications costs one progress
 * round trip per 20 ms instead of one per notification.
 */
const DEFAULT_PROGRESS_INTERVAL_MS = 20;

/** A claimed subscription being worked on, and what it knows beyond its claim. */
interface Job {
  /** Confirmed lease expiry (ms since epoch): sends must end before it. */
  leaseUntil: number;
  /** Highest event number known to exist (from the claim, progress updates, or handed-over events). */
  knownLast: number;
  /** Delivered through this number (as far as this job knows). */
  through: number;
  /** Highest event number taken for sending (in flight, or delivered); `through` when none is in flight. */
  takenThrough: number;
  /** Undelivered events in order, contiguous from `takenThrough + 1`, when known. */
  buffer: StoredEvent[];
  /** Whether the job delivered anything (a job that could not, e.g. unreadable, must not be re-claimed at once). */
  progressed: boolean;
  /** Set while the job lingers: ends the wait (events arrived, or the slot is wanted). */
  endLinger?: () => void;
}

export class DeliveryWorker {
  readonly owner = `worker-${randomUUID()}`;
  private stopped = true;
  private running?: Promise<void>;
  private wakeRequested = false;
  private readonly sleeper = new WakeableSleep(true);
  private readonly specs = new Map<string, { version: number; spec: SubscriptionSpec }>();
  /** Subscriptions this worker holds a lease on, and their work in progress. */
  private readonly jobs = new Map<string, { job: Job; done: Promise<void> }>();

  constructor(private readonly deps: DeliveryWorkerDeps) {}

  private get concurrency(): number {
    return this.deps.concurrency ?? 16;
  }

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
    // Work elsewhere may be waiting for a slot that a lingering job holds.
    if (this.jobs.size >= this.concurrency) this.endLingers();
  }

  private endLingers(): void {
    for (const { job } of this.jobs.values()) job.endLinger?.();
  }

  /**
   * Events just numbered in this process. Subscriptions this worker is delivering for take them over
   * (no read back from the log); if any other push-channel subscription got events, the worker looks
   * for work. Connection channels (websocket) are not this worker's.
   */
  noteEvents(handed: Pick<NumberedEvents, 'bySubscription'>): void {
    let unclaimed = false;
    for (const [id, { channelType, events }] of handed.bySubscription) {
      if (CONNECTION_CHANNELS.includes(channelType) || events.length === 0) continue;
      const entry = this.jobs.get(id);
      if (!entry) {
        unclaimed = true;
        continue;
      }
      const job = entry.job;
      const lastNumber = events[events.length - 1].eventNumber;
      job.knownLast = Math.max(job.knownLast, lastNumber);
      const next = (job.buffer.length > 0 ? job.buffer[job.buffer.length - 1].eventNumber : Math.max(job.through, job.takenThrough)) + 1;
      const fresh = events.filter((e) => e.eventNumber >= next);
      if (fresh.length > 0 && fresh[0].eventNumber === next && job.buffer.length + fresh.length <= MAX_BUFFERED) job.buffer.push(...fresh);
      job.endLinger?.();
    }
    if (unclaimed) this.wake();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake();
    this.endLingers();
    await this.running;
  }

  /**
   * Claims due subscriptions while fewer than `concurrency` are being worked on; each claimed one is
   * worked on independently (a slow endpoint holds only its own slot).
   */
  private async loop(): Promise<void> {
    const poll = this.deps.pollIntervalMs ?? 1000;
    while (!this.stopped) {
      this.wakeRequested = false;
      const free = this.concurrency - this.jobs.size;
      let full = false;
      if (free > 0) {
        try {
          full = (await this.claim(free)) >= free;
        } catch (err) {
          this.deps.onError?.(err);
        }
      }
      if (this.stopped) break;
      // After a full claim there may be more due work; after a partial one, only new events (a wake-up),
      // a freed slot (also a wake-up) or timed work (below) can bring more.
      if (this.wakeRequested || (full && this.jobs.size < this.concurrency)) continue;
      let wait = poll;
      if (this.jobs.size < this.concurrency) {
        try {
          const due = await nextDueAt(this.deps.db);
          if (due) wait = Math.max(1, Math.min(poll, due.getTime() - this.deps.clock.now().getTime() + 1));
        } catch (err) {
          this.deps.onError?.(err);
        }
      }
      if (this.wakeRequested || this.stopped) continue;
      await this.sleeper.sleep(wait);
    }
    await Promise.all([...this.jobs.values()].map((j) => j.done));
  }

  /** Claims up to `limit` due subscriptions and starts working on them; returns how many. */
  private async claim(limit: number): Promise<number> {
    const now = this.deps.clock.now();
    const lease = new Date(now.getTime() + this.deps.defaultTimeoutSeconds * 1000 + LEASE_MARGIN_MS);
    const claimed = await claimDue(this.deps.db, this.owner, now, lease, limit);
    for (const state of claimed) {
      const job: Job = { leaseUntil: lease.getTime(), knownLast: state.eventsSinceStart, through: state.deliveredThrough, takenThrough: state.deliveredThrough, buffer: [], progressed: false };
      const done = this.runJob(state, job).finally(() => {
        const wasFull = this.jobs.size >= this.concurrency;
        this.jobs.delete(state.subscriptionId);
        // A freed slot may serve waiting work; events handed over after the job's last look at the
        // database (its lease may be released already) need a new claim. A job that delivered nothing
        // (unreadable subscription, failed attempt) is left to its schedule, not re-claimed at once.
        if (job.progressed && (wasFull || job.knownLast > job.through)) this.wake();
      });
      this.jobs.set(state.subscriptionId, { job, done });
    }
    return claimed.length;
  }

  private async runJob(state: StateRow, job: Job): Promise<void> {
    let released = false;
    try {
      released = await this.work(state, job);
    } catch (err) {
      this.deps.onError?.(err, state.subscriptionId);
    } finally {
      if (!released) await releaseLease(this.deps.db, this.owner, state.subscriptionId).catch((err: unknown) => this.deps.onError?.(err, state.subscriptionId));
    }
  }

  /** Works on one claimed subscription; true if the lease was already released on the way. */
  private async work(state: StateRow, job: Job): Promise<boolean> {
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
      if (await this.ensureLease(job, spec)) job.progressed = await this.handshake(state, spec, channel);
      return false;
    }
    if (state.status === 'active' && state.deliveredThrough < state.eventsSinceStart) {
      const outcome = await this.deliverEvents(state, spec, channel, job);
      if (outcome !== 'failed') return outcome === 'released';
    }
    if (state.heartbeatPeriod !== null && (state.status === 'active' || state.status === 'error')) {
      const last = state.lastSentAt ?? now;
      if ((now.getTime() - last.getTime() >= state.heartbeatPeriod * 1000 || !state.lastSentAt) && (await this.ensureLease(job, spec))) job.progressed = (await this.heartbeat(state, spec, channel)) || job.progressed;
    }
    return false;
  }

  private timeoutMs(spec: SubscriptionSpec): number {
    return (spec.channel.timeout ?? this.deps.defaultTimeoutSeconds) * 1000;
  }

  private leaseUntil(spec: SubscriptionSpec): Date {
    return new Date(this.deps.clock.now().getTime() + this.timeoutMs(spec) + LEASE_MARGIN_MS);
  }

  /**
   * Makes sure the lease outlasts one more attempt (a subscription's timeout may exceed the lease its
   * claim took); false if the lease is lost.
   */
  private async ensureLease(job: Job, spec: SubscriptionSpec): Promise<boolean> {
    if (this.leaseCovers(job, spec)) return true;
    const until = this.leaseUntil(spec);
    if (!(await extendLease(this.deps.db, this.owner, spec.id, until))) return false;
    job.leaseUntil = until.getTime();
    return true;
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

  /** True if the endpoint accepted it. */
  private async handshake(state: StateRow, spec: SubscriptionSpec, channel: Channel): Promise<boolean> {
    const result = await this.send(channel, spec, 'handshake', state.eventsSinceStart, 'requested');
    if (result.ok) {
      await recordDelivered(this.deps.db, this.owner, spec.id, { sentAt: this.deps.clock.now(), leaseUntil: this.leaseUntil(spec) });
      await this.deps.setStatus(spec.id, 'active');
      return true;
    }
    await this.failed(state, spec, result, false);
    return false;
  }

  /**
   * Delivers undelivered events in order while the lease holds: 'released' when it caught up (the lease
   * was released with the last progress update), 'held' when it stopped otherwise, 'failed' on a failure.
   *
   * One notification is in flight at a time (event order), but progress updates run beside the sending
   * (ProgressRecorder); they are settled before a failure is recorded and before the job ends. Sending
   * on while an update is outstanding is safe because the job only sends within its confirmed lease.
   */
  private async deliverEvents(state: StateRow, spec: SubscriptionSpec, channel: Channel, job: Job): Promise<'released' | 'held' | 'failed'> {
    const maxCount = spec.channel.maxCount ?? 1;
    const progress = new ProgressRecorder(
      job.through,
      async (through) => {
        const leaseUntil = this.leaseUntil(spec);
        const p = await recordDelivered(this.deps.db, this.owner, spec.id, { deliveredThrough: through, sentAt: this.deps.clock.now(), leaseUntil });
        return p ? { eventsSinceStart: p.eventsSinceStart, leaseUntil: leaseUntil.getTime() } : undefined;
      },
      (r) => {
        job.knownLast = Math.max(job.knownLast, r.eventsSinceStart);
        job.leaseUntil = Math.max(job.leaseUntil, r.leaseUntil);
      },
      { minIntervalMs: this.deps.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS },
    );
    try {
      while (!this.stopped && !progress.leaseLost) {
        if (job.through >= job.knownLast) {
          if (await this.linger(job, progress)) continue;
          if (!(await progress.settle())) return 'held';
          if (job.through < job.knownLast) continue;
          // Caught up as far as this process knows: record and release in one statement, unless more arrived.
          const final = await recordDelivered(this.deps.db, this.owner, spec.id, { deliveredThrough: job.through, sentAt: state.lastSentAt ?? this.deps.clock.now(), leaseUntil: this.leaseUntil(spec), releaseIfCaughtUp: true });
          if (final === undefined) return 'held';
          if (final.released) return 'released';
          job.knownLast = Math.max(job.knownLast, final.eventsSinceStart);
          continue;
        }
        if (job.buffer.length === 0) {
          job.buffer = await eventsFrom(this.deps.db, spec.id, job.through + 1, job.knownLast, Math.max(PREFETCH, maxCount));
          if (job.buffer.length === 0) {
            // Pruned by retention before delivery: nothing is left to send up to knownLast.
            job.through = job.takenThrough = job.knownLast;
            continue;
          }
        }
        const events = job.buffer.splice(0, maxCount);
        const last = events[events.length - 1].eventNumber;
        job.takenThrough = last;
        if (!(await this.ensureLeaseSettled(job, spec, progress))) return 'held';
        const result = await this.send(channel, spec, 'event-notification', last, 'active', await this.eventInputs(spec, events));
        if (!result.ok) {
          job.buffer = [];
          job.takenThrough = job.through;
          if (!(await progress.settle())) return 'held';
          await this.failed(state, spec, result, true);
          return 'failed';
        }
        job.through = last;
        job.progressed = true;
        state = { ...state, lastSentAt: this.deps.clock.now() };
        // Caught up as far as this process knows: the top of the loop records and releases in one statement.
        if (job.through < job.knownLast) progress.delivered(last);
      }
      await progress.settle();
      return 'held';
    } finally {
      // No update may outlive the job (its lease is released after it).
      await progress.settle().catch(() => undefined);
    }
  }

  /**
   * Waits up to lingerMs for events handed over by this process's event writer; true if some arrived.
   * Progress so far is recorded meanwhile, so $status does not lag behind a lingering job.
   */
  private async linger(job: Job, progress: ProgressRecorder): Promise<boolean> {
    const ms = this.deps.lingerMs ?? DEFAULT_LINGER_MS;
    if (ms <= 0 || this.stopped || !job.progressed || this.jobs.size >= this.concurrency) return false;
    progress.delivered(job.through);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(end, ms);
      function end(): void {
        clearTimeout(timer);
        job.endLinger = undefined;
        resolve();
      }
      job.endLinger = end;
    });
    return !this.stopped && job.through < job.knownLast;
  }

  /** Whether the job's lease outlasts one more attempt, with half the margin to spare. */
  private leaseCovers(job: Job, spec: SubscriptionSpec): boolean {
    return job.leaseUntil - this.deps.clock.now().getTime() > this.timeoutMs(spec) + LEASE_MARGIN_MS / 2;
  }

  /** ensureLease, settling outstanding progress updates first when the lease runs short. */
  private async ensureLeaseSettled(job: Job, spec: SubscriptionSpec, progress: ProgressRecorder): Promise<boolean> {
    if (this.leaseCovers(job, spec)) return true;
    if (!(await progress.settle())) return false;
    return this.ensureLease(job, spec);
  }

  /** True if the endpoint accepted it. */
  private async heartbeat(state: StateRow, spec: SubscriptionSpec, channel: Channel): Promise<boolean> {
    const result = await this.send(channel, spec, 'heartbeat', state.eventsSinceStart, state.status);
    if (result.ok) {
      await recordDelivered(this.deps.db, this.owner, spec.id, { sentAt: this.deps.clock.now(), leaseUntil: this.leaseUntil(spec) });
      return true;
    }
    if (state.status === 'active') {
      await this.failed(state, spec, result, true);
    } else {
      // Already in error: note the attempt so the next heartbeat waits a full period.
      await recordFailure(this.deps.db, this.owner, spec.id, { code: result.code, message: result.message, at: this.deps.clock.now(), attempts: state.attempts, retryAt: null, countsAsSent: true });
    }
    return false;
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
