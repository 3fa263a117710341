/**
 * The websocket hub of one server process: the connections clients opened, the subscriptions each one
 * has bound, and the fan-out of events to them.
 *
 * The event writer numbers and stores events (subscription_events) whether or not anyone is bound. This
 * process's writer hands what it committed to the hub, which sends it to the bindings that are ready
 * for it without reading it back; otherwise the hub is woken — by the `clarion_deliveries` NOTIFY of
 * another process's writer, or by its own one-second tick (the safety net for lost notifications) —
 * and reads, for all bound subscriptions at once, the events after what each binding was last sent
 * (websocket-fanout.ts). Each binding keeps that cursor, so per connection every event is sent once
 * and in order, and a binding that falls behind (a resume, a re-bind after its token expired) catches
 * up from the log before it gets live events.
 *
 * On PGlite the database is embedded in this one process, so there is no other writer: every event
 * arrives handed over, NOTIFY wakes (this process's own) are ignored, and the tick only retries failed
 * rounds — with 10,000 bound subscriptions, each needless read held the single connection for ~0.1 s.
 *
 * A binding lasts until its token expires: it is then suspended (cursor kept, the client told), and a
 * `bind-with-token` with a fresh token on the same connection resumes it without a gap or duplicate.
 */
import type { WebSocket } from 'ws';
import { Errors, FhirError } from '../../fhir/errors.js';
import type { NotificationInput } from '../../notify/notification-model.js';
import type { Clock, Db } from '../../store/db.js';
import type { NumberedEvents } from '../../subscriptions/event-model.js';
import { redeemToken, type RedeemedToken } from './binding-tokens.js';
import { BindingRegistry, type LoadSubscription } from './websocket-bindings.js';
import { describeSubscriptions, FrameWriter, newConnection, whyNotBindable, type Connection, type KnownSubscription } from './websocket-connection.js';
import { readBoundStates } from './websocket-event-reader.js';
import { FanOut, type Render, type RenderBytes } from './websocket-fanout.js';
import { informationFrame, outcomeFrame, parseClientMessage, PONG_FRAME, type ClientMessage } from './websocket-messages.js';

export interface WebSocketHubDeps {
  db: Db;
  clock: Clock;
  /** The subscription as currently stored (any status), or undefined when deleted or unreadable. */
  loadSubscription: LoadSubscription;
  /** Wire form of a notification for this subscription (version, MIME type). */
  render: Render;
  /**
   * A renderer for one fan-out round: the bytes of `render`'s output, but it may share the work between
   * notifications that differ only in subscription-specific values (one write, many subscriptions).
   */
  roundRender?: () => RenderBytes;
  baseUrl(): string;
  maxBindingsPerConnection: number;
  idleTimeoutMs: number;
  /** Expiry, heartbeat, idle and safety-net poll period (ms); default 1000. */
  tickMs?: number;
  /** A connection with more than this queued unsent is dropped (it can reconnect and resume); default 8 MiB. */
  maxBufferedBytes?: number;
  onError?: (err: unknown, context?: Record<string, unknown>) => void;
}

/** Consecutive unparseable messages after which the connection is closed (1008). */
const MAX_INVALID_IN_A_ROW = 20;

export class WebSocketHub {
  private readonly connections = new Set<Connection>();
  private readonly bindings: BindingRegistry;
  private readonly frames: FrameWriter;
  private readonly fanOut: FanOut;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** No other process writes to this database (PGlite). */
  private readonly embedded: boolean;

  constructor(private readonly deps: WebSocketHubDeps) {
    this.embedded = deps.db.kind === 'pglite';
    this.frames = new FrameWriter(deps.maxBufferedBytes);
    this.bindings = new BindingRegistry(deps.loadSubscription);
    this.fanOut = new FanOut({
      db: deps.db,
      registry: this.bindings,
      frames: this.frames,
      render: deps.render,
      ...(deps.roundRender ? { roundRender: deps.roundRender } : {}),
      baseUrl: () => deps.baseUrl(),
      now: () => this.now(),
      endSubscription: (id, reason) => this.endSubscription(id, reason),
      ...(deps.onError ? { onError: deps.onError } : {}),
    });
  }

  start(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => this.tick(), this.deps.tickMs ?? 1000);
    this.timer.unref();
  }

  /** Counts, for benchmarks and diagnostics. */
  stats(): { connections: number; activeBindings: number; subscriptions: number } {
    return { connections: this.connections.size, ...this.bindings.stats() };
  }

  /** Takes over a connection a client opened; `requester` is the identity of the upgrade request. */
  attach(socket: WebSocket, requester: string): void {
    const now = this.now();
    const conn = newConnection(socket, requester, now);
    if (this.closed) {
      socket.close(1001, 'server shutting down');
      return;
    }
    this.connections.add(conn);
    socket.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => this.onMessage(conn, data, isBinary));
    socket.on('pong', () => (conn.awaitingPong = false));
    socket.on('close', () => this.detach(conn));
  }

  /** New events may exist (another process's NOTIFY): read and fan them out. */
  wake(): void {
    if (!this.closed && !this.embedded) this.fanOut.wake();
  }

  /** What this process's event writer just committed: fanned out without reading it back. */
  written(events: NumberedEvents): void {
    if (!this.closed) this.fanOut.written(events);
  }

  /** Resolves when no fan-out is running (tests, shutdown). */
  async idle(): Promise<void> {
    await this.fanOut.idle();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    await this.fanOut.close();
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
      const sub = await this.bindings.subscription(id, state?.subscriptionVersion);
      if (!this.connections.has(conn)) return;
      const refusal = !sub ? 'it was deleted' : whyNotBindable(sub.spec, state?.status ?? sub.spec.status);
      if (refusal || !sub) {
        this.bindings.remove(conn, id);
        this.frames.send(conn, outcomeFrame(Errors.wsSubscriptionEnded({ id, reason: refusal ?? 'it was deleted' })));
        continue;
      }
      sub.eventsSinceStart = Math.max(sub.eventsSinceStart, state?.eventsSinceStart ?? 0);
      if (!this.openBinding(conn, id, sub, token, msg.resume)) continue;
      // The handshake goes out in the same turn as the binding becomes active: any event follows it.
      this.sendHandshake(conn, sub);
    }
    // Events after the new cursors (a resume, or written since the state was read) follow at once:
    // a read round for these subscriptions only, not for every bound one.
    this.fanOut.wake(ids);
  }

  /** Adds or refreshes the binding of `id` on `conn`; false (after telling the client) if the resume point is invalid. */
  private openBinding(conn: Connection, id: string, sub: KnownSubscription, token: RedeemedToken, resume: Extract<ClientMessage, { type: 'bind' }>['resume']): boolean {
    // On a connection that already had this subscription, its own cursor wins: nothing is sent twice.
    const after = conn.bindings.has(id) ? undefined : resume?.kind === 'all' ? resume.after : resume?.after.get(id);
    if (after !== undefined && after > sub.eventsSinceStart) {
      this.sendError(conn, Errors.wsInvalidMessage({ reason: `lastEventNumber ${after} is beyond the last event (${sub.eventsSinceStart}) of Subscription/${id}` }));
      return false;
    }
    this.bindings.open(conn, id, after ?? sub.eventsSinceStart, token.expiresAt.getTime(), this.now());
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
    for (const id of ids) this.bindings.remove(conn, id);
    this.frames.send(conn, informationFrame(ids.length ? `Unbound ${describeSubscriptions(ids)}` : 'Nothing to unbind: no subscription of this token is bound on this connection'));
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
          this.bindings.suspend(b);
          expired.push(b.subscriptionId);
          continue;
        }
        activeCount++;
        const period = this.bindings.known.get(b.subscriptionId)?.spec.channel.heartbeatPeriod;
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
    // Another process's notifications are hints that can be lost (a reconnecting listener): poll while
    // anything is bound. Failed rounds are retried either way.
    if (this.bindings.active.size > 0) this.fanOut.tick(!this.embedded);
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
    const sub = this.bindings.known.get(id);
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

  /** The subscription was turned off, deleted or changed channel: its bindings end, each client is told. */
  private endSubscription(id: string, reason: string): void {
    for (const conn of this.connections) {
      if (!conn.bindings.has(id)) continue;
      this.bindings.remove(conn, id);
      this.frames.send(conn, outcomeFrame(Errors.wsSubscriptionEnded({ id, reason })));
    }
  }

  private detach(conn: Connection): void {
    if (!this.connections.delete(conn)) return;
    for (const id of [...conn.bindings.keys()]) this.bindings.remove(conn, id);
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
