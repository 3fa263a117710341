/**
 * The fan-out of one hub: sends each active binding the events after its cursor, once and in order.
 *
 * Two ways in:
 * - **Handed over** (`written`): this process's event writer passes what it just committed. Bindings
 *   whose cursor is right before those events get them without any read — with 10,000 subscriptions
 *   triggered by one write, reading their states and events back cost more than everything else.
 * - **Read** (`wake`): another process's events (its NOTIFY), the safety-net poll, a bind that must
 *   catch up, or a handed-over event a binding is not ready for (it is behind: a resume, a backlog).
 *   A round reads the states of the subscriptions with something new for some binding, then their
 *   event windows, all subscriptions in one query each.
 *
 * Both only ever send a binding the events right after its cursor and then advance it, so they may
 * interleave freely: whatever one has sent, the other skips. Rendering is shared within a round (the
 * same events for many subscriptions are rendered once, see `roundRender`), and each notification's
 * bytes go to every socket at the same cursor.
 *
 * Definitions: a handed-over batch that changed subscriptions makes every bound definition suspect
 * until a read round has reloaded those with a newer version; until then events go the read way. A
 * change made by another process is seen by the next read round (its NOTIFY, or within a tick).
 */
import type { RenderedNotification } from '../channel.js';
import type { NotificationInput } from '../../notify/notification-model.js';
import { contentKeys, eventReportInput, type ContentKey, type LoggedEventInput } from '../../notify/status-report.js';
import type { Db } from '../../store/db.js';
import { EventLog, resourceKey } from '../../subscriptions/event-log.js';
import type { NumberedEvent, NumberedEvents } from '../../subscriptions/event-model.js';
import type { SubscriptionSpec } from '../../subscriptions/subscription-model.js';
import { Errors } from '../../fhir/errors.js';
import type { BindingRegistry } from './websocket-bindings.js';
import { whyNotBindable, type Binding, type FrameWriter, type KnownSubscription } from './websocket-connection.js';
import { readChangedStates, readEventWindows, type EventWindow } from './websocket-event-reader.js';
import { outcomeFrame } from './websocket-messages.js';

export type Render = (input: NotificationInput, spec: SubscriptionSpec) => RenderedNotification;
/** The UTF-8 bytes of `render(input, spec).body`. */
export type RenderBytes = (input: NotificationInput, spec: SubscriptionSpec) => Buffer;

export interface FanOutDeps {
  db: Db;
  registry: BindingRegistry;
  frames: FrameWriter;
  render: Render;
  /** A renderer for one round (the bytes of `render`'s output; may share work between subscriptions). */
  roundRender?: () => RenderBytes;
  baseUrl(): string;
  now(): number;
  /** The subscription was turned off, deleted or moved to another channel: end its bindings. */
  endSubscription(id: string, reason: string): void;
  onError?: (err: unknown, context?: Record<string, unknown>) => void;
}

/** Events read per subscription per round (a longer backlog takes several rounds, still in order). */
const EVENTS_PER_ROUND = 500;

type Lookup = (k: ContentKey) => never;
const NO_CONTENT: Lookup = () => undefined as never;

/** Events handed over for one subscription, with its definition when they arrived. */
interface Handed {
  id: string;
  events: LoggedEventInput[];
  definition: KnownSubscription | undefined;
}

export class FanOut {
  private pumping: Promise<void> | undefined;
  /** What the next read round looks at: every bound subscription, or only these. */
  private due: Set<string> | 'all' | undefined;
  /** What failed rounds looked at: retried by the next tick. */
  private failed: Set<string> | 'all' | undefined;
  /** Handed-over batches being sent (full-resource content is loaded first). */
  private readonly sending = new Set<Promise<void>>();
  /** Handed-over batches that changed subscriptions, and how many of them read rounds have caught up with. */
  private definitionsChanged = 0;
  private definitionsRead = 0;
  private closed = false;

  constructor(private readonly deps: FanOutDeps) {}

  /** New events may exist: a read round for every bound subscription, or only for `ids`. */
  wake(ids?: Iterable<string>): void {
    if (this.closed) return;
    if (ids === undefined) this.due = 'all';
    else if (this.due !== 'all') {
      this.due ??= new Set();
      for (const id of ids) this.due.add(id);
    }
    if (this.pumping) return;
    this.pumping = this.pump().finally(() => {
      this.pumping = undefined;
      // Woken between the last round and now: that wake saw a pump running and relied on it.
      if (this.due !== undefined) this.wake([]);
    });
  }

  /** What this process's event writer just committed. */
  written(batch: NumberedEvents): void {
    if (this.closed) return;
    if (batch.subscriptionsChanged) {
      this.definitionsChanged++;
      this.wake();
    }
    const { active, known } = this.deps.registry;
    const handed: Handed[] = [];
    const keys: ContentKey[] = [];
    for (const [id, { channelType, events }] of batch.bySubscription) {
      if (channelType !== 'websocket' || events.length === 0 || !active.has(id)) continue;
      // Content is loaded for the definition as it is now; one reloaded meanwhile goes the read way.
      const h: Handed = { id, events: events.map(logged), definition: known.get(id) };
      if (h.definition?.spec.content === 'full-resource') keys.push(...contentKeys(h.events, 'full-resource'));
      handed.push(h);
    }
    if (handed.length === 0) return;
    const failed = (err: unknown) => {
      this.deps.onError?.(err, { stage: 'websocket fan-out (handed over)' });
      this.wake(handed.map((h) => h.id));
    };
    if (keys.length === 0) {
      // Sent in this turn: nothing queued (a poll, the delivery worker's queries) gets in first.
      try {
        this.sendHanded(handed, NO_CONTENT);
      } catch (err) {
        failed(err);
      }
      return;
    }
    const p = this.loadContent(keys).then((lookup) => this.sendHanded(handed, lookup)).catch(failed);
    this.sending.add(p);
    void p.finally(() => this.sending.delete(p));
  }

  /** The periodic tick: retries failed rounds and, with `poll`, reads every bound subscription (lost notifications). */
  tick(poll: boolean): void {
    const failed = this.failed;
    this.failed = undefined;
    if (poll || failed === 'all') this.wake();
    else if (failed) this.wake(failed);
  }

  /** Resolves when nothing is being sent (tests, shutdown). */
  async idle(): Promise<void> {
    while (this.pumping || this.sending.size > 0) await Promise.all([this.pumping, ...this.sending]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.idle();
  }

  // -----------------------------------------------------------------------------------------------
  // Handed over

  private sendHanded(handed: Handed[], lookup: Lookup): void {
    const { registry } = this.deps;
    const windows: EventWindow[] = [];
    const events = new Map<string, LoggedEventInput[]>();
    const later: string[] = [];
    for (const { id, events: list, definition } of handed) {
      const sub = registry.known.get(id);
      if (!sub || sub !== definition || this.definitionsRead !== this.definitionsChanged) {
        later.push(id);
        continue;
      }
      const last = list[list.length - 1].eventNumber;
      sub.eventsSinceStart = Math.max(sub.eventsSinceStart, last);
      windows.push({ subscriptionId: id, after: list[0].eventNumber - 1, through: last });
      events.set(id, list);
    }
    later.push(...this.send(windows, events, lookup));
    if (later.length > 0) this.wake(later);
  }

  // -----------------------------------------------------------------------------------------------
  // Read

  private async pump(): Promise<void> {
    while (this.due !== undefined && !this.closed) {
      const due = this.due;
      this.due = undefined;
      const changed = this.definitionsChanged;
      const ids = due === 'all' ? [...this.deps.registry.active.keys()] : [...due].filter((id) => this.deps.registry.active.has(id));
      try {
        const more = await this.readRound(ids);
        if (due === 'all') this.definitionsRead = changed;
        if (more.length > 0) this.wake(more);
      } catch (err) {
        this.failed = due === 'all' || this.failed === 'all' ? 'all' : new Set([...(this.failed ?? []), ...due]);
        this.deps.onError?.(err, { stage: 'websocket fan-out' });
      }
    }
  }

  /** One read round for these subscriptions; returns those with more to send (a long backlog, a late binding). */
  private async readRound(ids: string[]): Promise<string[]> {
    const { registry, db } = this.deps;
    const more: string[] = [];
    if (ids.length === 0) return more;
    const states = await readChangedStates(
      db,
      ids.map((id) => ({ subscriptionId: id, floor: registry.floor(id), version: registry.known.get(id)?.version ?? 0 })),
    );
    const windows: EventWindow[] = [];
    for (const [id, state] of states) {
      const set = registry.active.get(id);
      if (!set || set.size === 0) continue;
      const sub = await registry.subscription(id, state.subscriptionVersion);
      const refusal = !sub ? 'it was deleted' : whyNotBindable(sub.spec, state.status);
      if (refusal || !sub) {
        this.deps.endSubscription(id, refusal ?? 'it was deleted');
        continue;
      }
      // Handed-over events may have moved it on while the state was read.
      sub.eventsSinceStart = Math.max(sub.eventsSinceStart, state.eventsSinceStart);
      const floor = registry.floor(id);
      if (state.eventsSinceStart <= floor) continue;
      const through = Math.min(state.eventsSinceStart, floor + EVENTS_PER_ROUND);
      if (through < state.eventsSinceStart) more.push(id);
      windows.push({ subscriptionId: id, after: floor, through });
    }
    if (windows.length === 0) return more;
    const events = await readEventWindows(db, windows);
    const keys = windows.flatMap((w) => contentKeys(events.get(w.subscriptionId) ?? [], registry.known.get(w.subscriptionId)?.spec.content ?? 'empty'));
    more.push(...this.send(windows, events, await this.loadContent(keys)));
    return more;
  }

  private async loadContent(keys: ContentKey[]): Promise<Lookup> {
    if (keys.length === 0) return NO_CONTENT;
    const loaded = await new EventLog(this.deps.db).loadResources(keys);
    return (k) => loaded.get(resourceKey(k)) as never;
  }

  // -----------------------------------------------------------------------------------------------
  // Sending

  /** Sends each window to its subscription's bindings, in one corked round; returns subscriptions with bindings behind a window. */
  private send(windows: EventWindow[], events: Map<string, LoggedEventInput[]>, lookup: Lookup): string[] {
    const behind: string[] = [];
    if (windows.length === 0) return behind;
    const render = this.deps.roundRender?.() ?? ((input, spec) => Buffer.from(this.deps.render(input, spec).body, 'utf8'));
    this.deps.frames.round(() => {
      for (const w of windows) {
        try {
          if (this.sendWindow(w, events.get(w.subscriptionId) ?? [], lookup, render)) behind.push(w.subscriptionId);
        } catch (err) {
          this.deps.onError?.(err, { subscriptionId: w.subscriptionId, stage: 'websocket render' });
        }
      }
    });
    return behind;
  }

  /** Sends one subscription's window to its active bindings; true if some binding needs an earlier window. */
  private sendWindow(w: EventWindow, events: LoggedEventInput[], lookup: Lookup, render: RenderBytes): boolean {
    const set = this.deps.registry.active.get(w.subscriptionId);
    const sub = this.deps.registry.known.get(w.subscriptionId);
    if (!set || !sub) return false;
    let behind = false;
    const byCursor = new Map<number, Binding[]>();
    for (const b of set) {
      // Bound after the window was chosen, further back than it: served by a read round.
      if (b.cursor < w.after) behind = true;
      else if (b.cursor < w.through) {
        const list = byCursor.get(b.cursor);
        if (list) list.push(b);
        else byCursor.set(b.cursor, [b]);
      }
    }
    const maxCount = sub.spec.channel.maxCount ?? 1;
    const rendered = new Map<string, Buffer>();
    const now = this.deps.now();
    for (const [cursor, bindings] of byCursor) {
      const pending = events.filter((e) => e.eventNumber > cursor);
      if (pending.length > 0 && pending[0].eventNumber > cursor + 1) this.reportGap(bindings, w.subscriptionId, cursor + 1, pending[0].eventNumber - 1);
      for (let i = 0; i < pending.length; i += maxCount) {
        const chunk = pending.slice(i, i + maxCount);
        const last = chunk[chunk.length - 1].eventNumber;
        const key = `${chunk[0].eventNumber}-${last}`;
        let body = rendered.get(key);
        if (!body) {
          body = this.renderEvents(sub, chunk, lookup, render);
          rendered.set(key, body);
        }
        for (const b of bindings) {
          if (!b.active) continue;
          this.deps.frames.send(b.conn, body);
          b.cursor = last;
          b.lastSentAt = now;
        }
      }
      // Events pruned away entirely (nothing retained up to `through`): move on rather than re-read forever.
      for (const b of bindings) if (b.active && b.cursor < w.through && pending.length === 0) b.cursor = w.through;
    }
    return behind;
  }

  private renderEvents(sub: KnownSubscription, events: LoggedEventInput[], lookup: Lookup, render: RenderBytes): Buffer {
    const last = events[events.length - 1].eventNumber;
    const spec = sub.spec;
    const report = eventReportInput({ id: spec.id, topicUrl: spec.topic, status: 'active', content: spec.content, eventsSinceStart: last }, events, {
      content: spec.content,
      baseUrl: this.deps.baseUrl(),
      lookup,
    });
    return render({ ...report, type: 'event-notification' }, spec);
  }

  private reportGap(bindings: Binding[], id: string, from: number, to: number): void {
    for (const b of bindings) {
      if (b.gapReported) continue;
      b.gapReported = true;
      this.deps.frames.send(b.conn, outcomeFrame(Errors.wsEventsNotRetained({ id, from, to }), 'warning'));
    }
  }
}

/** A handed-over event in the form the log is read in. */
function logged(e: NumberedEvent): LoggedEventInput {
  return {
    eventNumber: e.eventNumber,
    occurredAt: e.occurredAt,
    focus: { type: e.focusType, id: e.focusId, version: e.focusVersion },
    interaction: e.interaction,
    additionalContext: e.additionalContext.map((c) => ({ reference: c.reference })),
  };
}
