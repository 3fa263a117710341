/**
 * The websocket hub of one server process: the connections clients opened, the subscriptions each one
 * has bound, and the fan-out of events to them.
 *
 * Events are never pushed from the write path. The event writer numbers and stores them
 * (subscription_events) whether or not anyone is bound; the hub is woken — by this process's event
 * writer, by the `clarion_deliveries` NOTIFY of another process's, or by its own one-second tick (the
 * safety net for lost notifications) — and then reads, for all bound subscriptions at once, the events
 * after what each binding was last sent. Each binding keeps that cursor, so per connection every event
 * is sent once and in order, and a binding that falls behind (a resume, a re-bind after its token
 * expired) catches up from the log before it gets live events. Each notification is rendered once per
 * wake and the same bytes go to every socket at the same cursor.
 *
 * A binding lasts until its token expires: it is then suspended (cursor kept, the client told), and a
 * `bind-with-token` with a fresh token on the same connection resumes it without a gap or duplicate.
 */
import type { WebSocket } from 'ws';
import type { RenderedNotification } from '../channel.js';
import { Errors, FhirError } from '../../fhir/errors.js';
import type { NotificationInput } from '../../notify/notification-model.js';
import { contentKeys, eventReportInput, type LoggedEventInput } from '../../notify/status-report.js';
import type { Clock, Db } from '../../store/db.js';
import { EventLog, resourceKey } from '../../subscriptions/event-log.js';
import type { SubscriptionSpec } from '../../subscriptions/subscription-model.js';
import { redeemToken, type RedeemedToken } from './binding-tokens.js';
import { describeSubscriptions, FrameWriter, whyNotBindable, type Binding, type Connection, type KnownSubscription } from './websocket-connection.js';
import { readBoundStates, readEventWindows, type EventWindow } from './websocket-event-reader.js';
import { informationFrame, outcomeFrame, parseClientMessage, PONG_FRAME, type ClientMessage } from './websocket-messages.js';

export interface WebSocketHubDeps {
  db: Db;
  clock: Clock;
  /** The subscription as currently stored (any status), or undefined when deleted or unreadable. */
  loadSubscription(id: string): Promise<{ spec: SubscriptionSpec; version: number } | undefined>;
  /** Wire form of a notification for this subscription (version, MIME type). */
  render(input: NotificationInput, spec: SubscriptionSpec): RenderedNotification;
  baseUrl(): string;
  maxBindingsPerConnection: number;
  idleTimeoutMs: number;
  /** Expiry, heartbeat, idle and safety-net poll period (ms); default 1000. */
  tickMs?: number;
  /** A connection with more than this queued unsent is dropped (it can reconnect and resume); default 8 MiB. */
  maxBufferedBytes?: number;
  onError?: (err: unknown, context?: Record<string, unknown>) => void;
}


/** Events read per subscription per round (a longer backlog takes several rounds, still in order). */
const EVENTS_PER_ROUND = 500;
/** Consecutive unparseable messages after which the connection is closed (1008). */
const MAX_INVALID_IN_A_ROW = 20;

export class WebSocketHub {
  private readonly connections = new Set<Connection>();
  /** Active bindings by subscription (what the fan-out iterates). */
  private readonly active = new Map<string, Set<Binding>>();
  private readonly known = new Map<string, KnownSubscription>();
  /** Bindings (active or suspended) per subscription, over all connections: `known` is dropped at 0. */
  private readonly bindingCounts = new Map<string, number>();
  private pumping: Promise<void> | undefined;
  private pumpAgain = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly frames: FrameWriter;

  constructor(private readonly deps: WebSocketHubDeps) {
    this.frames = new FrameWriter(deps.maxBufferedBytes);
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.tick(), this.deps.tickMs ?? 1000);
    this.timer.unref();
  }

  /** Counts, for benchmarks and diagnostics. */
  stats(): { connections: number; activeBindings: number; subscriptions: number } {
    let activeBindings = 0;
    for (const set of this.active.values()) activeBindings += set.size;
    return { connections: this.connections.size, activeBindings, subscriptions: this.active.size };
  }

  /** Takes over a connection a client opened; `requester` is the identity of the upgrade request. */
  attach(socket: WebSocket, requester: string): void {
    const now = this.now();
    const conn: Connection = { socket, requester, bindings: new Map(), queue: Promise.resolve(), idleSince: now, lastPingAt: now, awaitingPong: false, invalidInARow: 0 };
    if (this.closed) {
      socket.close(1001, 'server shutting down');
      return;
    }
    this.connections.add(conn);
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onMessage(conn, data, isBinary));
    socket.on('pong', () => (conn.awaitingPong = false));
    socket.on('close', () => this.detach(conn));
  }

  /** New events may exist (local writer, another process's NOTIFY): fan them out. */
  wake(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = this.pump().finally(() => (this.pumping = undefined));
  }

  /** Resolves when no fan-out is running (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pumping) await this.pumping;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.idle();
    for (const conn of this.connections) conn.socket.close(1001, 'server shutting down');
  }

  // -----------------------------------------------------------------------------------------------
  // Messages

  private onMessage(conn: Connection, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): void {
    let msg: ClientMessage;
    try {
      if (isBinary) throw Errors.wsInvalidMessage({ reason: 'binary frames are not accepted; send text' });
      const text = Buffer.isBuffer(data) ? data.toString('utf8') : Array.isArray(data) ? Buffer.concat(data).toString('utf8') : Buffer.from(data).toString('utf8');
      msg = parseClientMessage(text);
      conn.invalidInARow = 0;
    } catch (err) {
      this.sendError(conn, err);
      if (++conn.invalidInARow >= MAX_INVALID_IN_A_ROW) conn.socket.close(1008, 'too many invalid messages');
      return;
    }
    conn.queue = conn.queue.then(() => this.handle(conn, msg)).catch((err: unknown) => this.sendError(conn, err));
  }

  private async handle(conn: Connection, msg: ClientMessage): Promise<void> {
    if (!this.connections.has(conn)) return;
    if (msg.type === 'ping') this.frames.send(conn, PONG_FRAME);
    else if (msg.type === 'unbind') await this.unbind(conn, msg.token);
    else await this.bind(conn, msg);
  }

  private async bind(conn: Connection, msg: Extract<ClientMessage, { type: 'bind' }>): Promise<void> {
    const redeemed = await redeemToken(this.deps.db, msg.token, conn.requester, this.deps.clock.now());
    if (!redeemed.ok) {
      if (redeemed.reason === 'expired') throw Errors.wsTokenExpired({ expiredAt: redeemed.token.expiresAt.toISOString(), subscriptions: describeSubscriptions(redeemed.token.subscriptionIds) });
      throw Errors.wsTokenInvalid({ reason: redeemed.reason === 'unknown' ? 'no such token was issued (or it was removed long after expiry)' : 'it was issued to another requester' });
    }
    const token = redeemed.token;
    const ids = token.subscriptionIds;
    if (msg.resume?.kind === 'each') {
      for (const id of msg.resume.after.keys()) {
        if (!ids.includes(id)) throw Errors.wsTokenInvalid({ reason: `it does not cover Subscription/${id} (it covers ${describeSubscriptions(ids)})` });
      }
    }
    const added = ids.filter((id) => !conn.bindings.has(id)).length;
    if (conn.bindings.size + added > this.deps.maxBindingsPerConnection) throw Errors.wsTooManyBindings({ max: this.deps.maxBindingsPerConnection });

    const states = await readBoundStates(this.deps.db, ids);
    for (const id of ids) {
      const state = states.get(id);
      const sub = await this.subscription(id, state?.subscriptionVersion);
      if (!this.connections.has(conn)) return;
      const refusal = !sub ? 'it was deleted' : whyNotBindable(sub.spec, state?.status ?? sub.spec.status);
      if (refusal || !sub) {
        this.removeBinding(conn, id);
        this.frames.send(conn, outcomeFrame(Errors.wsSubscriptionEnded({ id, reason: refusal ?? 'it was deleted' })));
        continue;
      }
      sub.eventsSinceStart = Math.max(sub.eventsSinceStart, state?.eventsSinceStart ?? 0);
      if (!this.openBinding(conn, id, sub, token, msg.resume)) continue;
      // The handshake goes out in the same turn as the binding becomes active: any event follows it.
      this.sendHandshake(conn, sub);
    }
    this.wake();
  }

  /** Adds or refreshes the binding of `id` on `conn`; false (after telling the client) if the resume point is invalid. */
  private openBinding(conn: Connection, id: string, sub: KnownSubscription, token: RedeemedToken, resume: Extract<ClientMessage, { type: 'bind' }>['resume']): boolean {
    let binding = conn.bindings.get(id);
    if (!binding) {
      // On a connection that already had this subscription, its own cursor wins: nothing is sent twice.
      const after = resume?.kind === 'all' ? resume.after : resume?.after.get(id);
      if (after !== undefined && after > sub.eventsSinceStart) {
        this.sendError(conn, Errors.wsInvalidMessage({ reason: `lastEventNumber ${after} is beyond the last event (${sub.eventsSinceStart}) of Subscription/${id}` }));
        return false;
      }
      binding = { conn, subscriptionId: id, cursor: after ?? sub.eventsSinceStart, expiresAt: 0, active: false, lastSentAt: this.now(), gapReported: false };
      conn.bindings.set(id, binding);
      this.bindingCounts.set(id, (this.bindingCounts.get(id) ?? 0) + 1);
    }
    binding.expiresAt = token.expiresAt.getTime();
    if (!binding.active) {
      binding.active = true;
      let set = this.active.get(id);
      if (!set) this.active.set(id, (set = new Set()));
      set.add(binding);
    }
    conn.idleSince = undefined;
    return true;
  }

  private async unbind(conn: Connection, token: string | undefined): Promise<void> {
    let ids: string[];
    if (token === undefined) {
      ids = [...conn.bindings.keys()];
    } else {
      const redeemed = await redeemToken(this.deps.db, token, conn.requester, this.deps.clock.now());
      // An expired token still names what it bound: unbinding with it is allowed.
      if (!redeemed.ok && redeemed.reason !== 'expired') throw Errors.wsTokenInvalid({ reason: redeemed.reason === 'unknown' ? 'no such token was issued' : 'it was issued to another requester' });
      ids = redeemed.token.subscriptionIds.filter((id) => conn.bindings.has(id));
    }
    for (const id of ids) this.removeBinding(conn, id);
    this.frames.send(conn, informationFrame(ids.length ? `Unbound ${describeSubscriptions(ids)}` : 'Nothing to unbind: no subscription of this token is bound on this connection'));
  }

  // -----------------------------------------------------------------------------------------------
  // Fan-out

  private async pump(): Promise<void> {
    do {
      this.pumpAgain = false;
      try {
        if (await this.pumpOnce()) this.pumpAgain = true;
      } catch (err) {
        this.deps.onError?.(err, { stage: 'websocket fan-out' });
      }
    } while (this.pumpAgain && !this.closed);
  }

  /** One round for every bound subscription; true if more remains (a long backlog, a late binding). */
  private async pumpOnce(): Promise<boolean> {
    const ids = [...this.active.keys()];
    if (ids.length === 0) return false;
    let more = false;
    const states = await readBoundStates(this.deps.db, ids);
    const windows: EventWindow[] = [];
    for (const id of ids) {
      const set = this.active.get(id);
      const state = states.get(id);
      if (!set || set.size === 0 || !state) continue; // no state row yet: the event writer has not seen it
      const sub = await this.subscription(id, state.subscriptionVersion);
      const refusal = !sub ? 'it was deleted' : whyNotBindable(sub.spec, state.status);
      if (refusal || !sub) {
        this.endSubscription(id, refusal ?? 'it was deleted');
        continue;
      }
      sub.eventsSinceStart = state.eventsSinceStart;
      let floor = Infinity;
      for (const b of set) floor = Math.min(floor, b.cursor);
      if (state.eventsSinceStart <= floor) continue;
      const through = Math.min(state.eventsSinceStart, floor + EVENTS_PER_ROUND);
      if (through < state.eventsSinceStart) more = true;
      windows.push({ subscriptionId: id, after: floor, through });
    }
    if (windows.length === 0) return more;
    const events = await readEventWindows(this.deps.db, windows);
    const keys = windows.flatMap((w) => (this.known.get(w.subscriptionId)?.spec.content === 'full-resource' ? contentKeys(events.get(w.subscriptionId) ?? [], 'full-resource') : []));
    const loaded = keys.length > 0 ? await new EventLog(this.deps.db).loadResources(keys) : new Map<string, Record<string, unknown>>();
    const lookup = (k: Parameters<typeof resourceKey>[0]) => loaded.get(resourceKey(k)) as never;
    this.frames.round(() => {
      for (const w of windows) {
        try {
          if (this.fanOut(w, events.get(w.subscriptionId) ?? [], lookup)) more = true;
        } catch (err) {
          this.deps.onError?.(err, { subscriptionId: w.subscriptionId, stage: 'websocket render' });
        }
      }
    });
    return more;
  }

  /** Sends one subscription's window to its active bindings; true if some binding still needs an earlier window. */
  private fanOut(w: EventWindow, events: LoggedEventInput[], lookup: (k: Parameters<typeof resourceKey>[0]) => never): boolean {
    const set = this.active.get(w.subscriptionId);
    const sub = this.known.get(w.subscriptionId);
    if (!set || !sub) return false;
    let behind = false;
    const byCursor = new Map<number, Binding[]>();
    for (const b of set) {
      // Bound after the window was chosen, further back than it: served by the next round.
      if (b.cursor < w.after) behind = true;
      else if (b.cursor < w.through) {
        const list = byCursor.get(b.cursor);
        if (list) list.push(b);
        else byCursor.set(b.cursor, [b]);
      }
    }
    const maxCount = sub.spec.channel.maxCount ?? 1;
    const rendered = new Map<string, Buffer>();
    const now = this.now();
    for (const [cursor, bindings] of byCursor) {
      const pending = events.filter((e) => e.eventNumber > cursor);
      if (pending.length > 0 && pending[0].eventNumber > cursor + 1) this.reportGap(bindings, w.subscriptionId, cursor + 1, pending[0].eventNumber - 1);
      for (let i = 0; i < pending.length; i += maxCount) {
        const chunk = pending.slice(i, i + maxCount);
        const last = chunk[chunk.length - 1].eventNumber;
        const key = `${chunk[0].eventNumber}-${last}`;
        let body = rendered.get(key);
        if (!body) {
          body = Buffer.from(this.renderEvents(sub, chunk, lookup).body, 'utf8');
          rendered.set(key, body);
        }
        for (const b of bindings) {
          if (!b.active) continue;
          this.frames.send(b.conn, body);
          b.cursor = last;
          b.lastSentAt = now;
        }
      }
      // Events pruned away entirely (nothing retained up to `through`): move on rather than re-read forever.
      for (const b of bindings) if (b.active && b.cursor < w.through && pending.length === 0) b.cursor = w.through;
    }
    return behind;
  }

  private renderEvents(sub: KnownSubscription, events: LoggedEventInput[], lookup: (k: Parameters<typeof resourceKey>[0]) => never): RenderedNotification {
    const last = events[events.length - 1].eventNumber;
    const spec = sub.spec;
    const report = eventReportInput({ id: spec.id, topicUrl: spec.topic, status: 'active', content: spec.content, eventsSinceStart: last }, events, {
      content: spec.content,
      baseUrl: this.deps.baseUrl(),
      lookup,
    });
    return this.deps.render({ ...report, type: 'event-notification' }, spec);
  }

  private reportGap(bindings: Binding[], id: string, from: number, to: number): void {
    for (const b of bindings) {
      if (b.gapReported) continue;
      b.gapReported = true;
      this.frames.send(b.conn, outcomeFrame(Errors.wsEventsNotRetained({ id, from, to }), 'warning'));
    }
  }

  // -----------------------------------------------------------------------------------------------
  // Timed work: token expiry, heartbeats, idle connections, liveness, the safety-net poll

  private tick(): void {
    if (this.closed) return;
    const now = this.now();
    const heartbeats = new Map<string, Buffer | null>();
    for (const conn of this.connections) {
      const expired: string[] = [];
      let activeCount = 0;
      for (const b of conn.bindings.values()) {
        if (!b.active) continue;
        if (b.expiresAt <= now) {
          this.suspend(b);
          expired.push(b.subscriptionId);
          continue;
        }
        activeCount++;
        const period = this.known.get(b.subscriptionId)?.spec.channel.heartbeatPeriod;
        if (period !== undefined && now - b.lastSentAt >= period * 1000) {
          const body = this.heartbeat(b.subscriptionId, heartbeats);
          if (body) {
            this.frames.send(conn, body);
            b.lastSentAt = now;
          }
        }
      }
      if (expired.length > 0) {
        const at = new Date(Math.min(...expired.map((id) => conn.bindings.get(id)?.expiresAt ?? now))).toISOString();
        this.frames.send(conn, outcomeFrame(Errors.wsTokenExpired({ expiredAt: at, subscriptions: describeSubscriptions(expired) }), 'warning'));
      }
      this.checkLiveness(conn, activeCount, now);
    }
    // Notifications are hints that can be lost (a reconnecting listener): poll while anything is bound.
    if (this.active.size > 0) this.wake();
  }

  private checkLiveness(conn: Connection, activeCount: number, now: number): void {
    const timeout = this.deps.idleTimeoutMs;
    if (activeCount === 0) {
      conn.idleSince ??= now;
      if (now - conn.idleSince >= timeout) conn.socket.close(4000, `idle: no subscription bound for ${Math.round(timeout / 1000)} s`);
      return;
    }
    if (now - conn.lastPingAt < timeout) return;
    // A bound peer that did not answer the last ping within the timeout is gone (half-open TCP).
    if (conn.awaitingPong) {
      conn.socket.terminate();
      return;
    }
    conn.awaitingPong = true;
    conn.lastPingAt = now;
    conn.socket.ping();
  }

  private heartbeat(id: string, cache: Map<string, Buffer | null>): Buffer | null {
    const hit = cache.get(id);
    if (hit !== undefined) return hit;
    const sub = this.known.get(id);
    let body: Buffer | null = null;
    if (sub) {
      try {
        body = Buffer.from(this.deps.render(this.input(sub, 'heartbeat'), sub.spec).body, 'utf8');
      } catch (err) {
        this.deps.onError?.(err, { subscriptionId: id, stage: 'websocket heartbeat' });
      }
    }
    cache.set(id, body);
    return body;
  }

  // -----------------------------------------------------------------------------------------------
  // Bookkeeping

  private sendHandshake(conn: Connection, sub: KnownSubscription): void {
    this.frames.send(conn, this.deps.render(this.input(sub, 'handshake'), sub.spec).body);
    const b = conn.bindings.get(sub.spec.id);
    if (b) b.lastSentAt = this.now();
  }

  private input(sub: KnownSubscription, type: 'handshake' | 'heartbeat'): NotificationInput {
    const spec = sub.spec;
    return { subscription: { id: spec.id, topicUrl: spec.topic, status: 'active', content: spec.content }, type, eventsSinceSubscriptionStart: sub.eventsSinceStart, baseUrl: this.deps.baseUrl() };
  }

  /** The subscription's definition, reloaded when the pipeline reports a newer version than the one cached. */
  private async subscription(id: string, version: number | undefined): Promise<KnownSubscription | undefined> {
    const hit = this.known.get(id);
    if (hit && (version === undefined || hit.version >= version)) return hit;
    const loaded = await this.deps.loadSubscription(id);
    if (!loaded) {
      this.known.delete(id);
      return undefined;
    }
    const sub: KnownSubscription = { spec: loaded.spec, version: loaded.version, eventsSinceStart: hit?.eventsSinceStart ?? 0 };
    this.known.set(id, sub);
    return sub;
  }

  private suspend(b: Binding): void {
    b.active = false;
    const set = this.active.get(b.subscriptionId);
    set?.delete(b);
    if (set?.size === 0) this.active.delete(b.subscriptionId);
  }

  private removeBinding(conn: Connection, id: string): void {
    const b = conn.bindings.get(id);
    if (!b) return;
    this.suspend(b);
    conn.bindings.delete(id);
    const left = (this.bindingCounts.get(id) ?? 1) - 1;
    if (left > 0) {
      this.bindingCounts.set(id, left);
    } else {
      this.bindingCounts.delete(id);
      this.known.delete(id);
    }
  }

  /** The subscription was turned off, deleted or changed channel: its bindings end, each client is told. */
  private endSubscription(id: string, reason: string): void {
    for (const conn of this.connections) {
      if (!conn.bindings.has(id)) continue;
      this.removeBinding(conn, id);
      this.frames.send(conn, outcomeFrame(Errors.wsSubscriptionEnded({ id, reason })));
    }
  }

  private detach(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    for (const id of [...conn.bindings.keys()]) this.removeBinding(conn, id);
  }


  private sendError(conn: Connection, err: unknown): void {
    if (err instanceof FhirError) {
      this.frames.send(conn, outcomeFrame(err));
      return;
    }
    this.deps.onError?.(err, { stage: 'websocket message' });
    this.frames.send(conn, outcomeFrame(Errors.internal({ requestId: 'websocket' })));
  }

  private now(): number {
    return this.deps.clock.now().getTime();
  }
}
