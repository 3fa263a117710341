/**
 * The bindings of one hub, over all its connections: which are active per subscription (what a
 * fan-out iterates), how many exist per subscription (active or suspended), and the definition of
 * each bound subscription — loaded once and reloaded when the pipeline reports a newer version.
 */
import type { SubscriptionSpec } from '../../subscriptions/subscription-model.js';
import type { Binding, Connection, KnownSubscription } from './websocket-connection.js';

export type LoadSubscription = (id: string) => Promise<{ spec: SubscriptionSpec; version: number } | undefined>;

export class BindingRegistry {
  /** Active bindings by subscription. */
  readonly active = new Map<string, Set<Binding>>();
  readonly known = new Map<string, KnownSubscription>();
  /** Bindings (active or suspended) per subscription, over all connections: `known` is dropped at 0. */
  private readonly counts = new Map<string, number>();

  constructor(private readonly load: LoadSubscription) {}

  /** Counts, for benchmarks and diagnostics. */
  stats(): { activeBindings: number; subscriptions: number } {
    let activeBindings = 0;
    for (const set of this.active.values()) activeBindings += set.size;
    return { activeBindings, subscriptions: this.active.size };
  }

  /** The lowest cursor of the subscription's active bindings (Infinity if none). */
  floor(id: string): number {
    let floor = Infinity;
    for (const b of this.active.get(id) ?? []) floor = Math.min(floor, b.cursor);
    return floor;
  }

  /** The binding of `id` on `conn`, created at `cursor` if there is none; then active until `expiresAt`. */
  open(conn: Connection, id: string, cursor: number, expiresAt: number, now: number): Binding {
    let binding = conn.bindings.get(id);
    if (!binding) {
      binding = { conn, subscriptionId: id, cursor, expiresAt: 0, active: false, lastSentAt: now, gapReported: false };
      conn.bindings.set(id, binding);
      this.counts.set(id, (this.counts.get(id) ?? 0) + 1);
    }
    binding.expiresAt = expiresAt;
    if (!binding.active) {
      binding.active = true;
      let set = this.active.get(id);
      if (!set) this.active.set(id, (set = new Set()));
      set.add(binding);
    }
    return binding;
  }

  /** Keeps the binding (and its cursor) but sends it nothing until a bind with a fresh token. */
  suspend(b: Binding): void {
    b.active = false;
    const set = this.active.get(b.subscriptionId);
    set?.delete(b);
    if (set?.size === 0) this.active.delete(b.subscriptionId);
  }

  remove(conn: Connection, id: string): void {
    const b = conn.bindings.get(id);
    if (!b) return;
    this.suspend(b);
    conn.bindings.delete(id);
    const left = (this.counts.get(id) ?? 1) - 1;
    if (left > 0) {
      this.counts.set(id, left);
    } else {
      this.counts.delete(id);
      this.known.delete(id);
    }
  }

  /** The subscription's definition, reloaded when the pipeline reports a newer version than the one cached. */
  async subscription(id: string, version: number | undefined): Promise<KnownSubscription | undefined> {
    const hit = this.known.get(id);
    if (hit && (version === undefined || hit.version >= version)) return hit;
    const loaded = await this.load(id);
    if (!loaded) {
      this.known.delete(id);
      return undefined;
    }
    const sub: KnownSubscription = { spec: loaded.spec, version: loaded.version, eventsSinceStart: hit?.eventsSinceStart ?? 0 };
    this.known.set(id, sub);
    return sub;
  }
}
