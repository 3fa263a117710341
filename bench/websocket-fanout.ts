/**
 * Websocket fan-out. N clients bound on one topic without filters, then:
 * - latency: one write → time until each of the N clients received the event notification
 *   (p50/p99/max over `--rounds` single writes; "all N" = the max);
 * - sustained (for N = `--sustained-clients`): `--writes` writes at concurrency 8 → events/s until every
 *   client has every event, and notifications/s sent.
 * Two shapes: `shared` = one subscription bound by N connections (a dashboard fan-out); `own` = N
 * subscriptions, one connection each (every client its own subscription: one write makes N events).
 * The server runs as its own process (`--memory`, or PostgreSQL with --backends pg); the N clients
 * (`ws`) and the writer share this process; loopback only; every phase is bounded in time. Setup
 * (subscriptions in transaction Bundles of 500, binding tokens likewise, connecting and binding) is
 * timed per phase on stderr, not in the figures. `--sustained-clients 0` skips the sustained table.
 *
 *   npx tsx bench/websocket-fanout.ts [--clients 1000,10000] [--shapes shared,own] [--rounds 5]
 *                                     [--writes 1000] [--sustained-clients 1000] [--backends pglite,pg]
 */
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';
import type { ServerProcess } from '../test/support/server-process.js';
import { startBenchServer } from './bench-server.js';
import { describeConditions } from './conditions.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '1000,10000' },
    shapes: { type: 'string', default: 'shared,own' },
    rounds: { type: 'string', default: '5' },
    writes: { type: 'string', default: '1000' },
    'sustained-clients': { type: 'string', default: '1000' },
    backends: { type: 'string', default: 'pglite' },
    'database-url': { type: 'string', default: process.env.CLARION_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
const ADMISSION = 'http://hl7.org/SubscriptionTopic/admission';
const PHASE_LIMIT_MS = 180_000;
type Shape = 'shared' | 'own';

const subscription = {
  resourceType: 'Subscription',
  status: 'requested',
  reason: 'websocket fan-out bench',
  criteria: ADMISSION,
  channel: { type: 'websocket', payload: 'application/fhir+json', _payload: { extension: [{ url: `${IG}backport-payload-content`, valueCode: 'id-only' }] } },
};
const encounter = { resourceType: 'Encounter', status: 'in-progress', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: 'Patient/bench' } };

async function fhir(base: string, path: string, init: { method?: string; body?: unknown } = {}): Promise<any> {
  const res = await fetch(`${base}/${path}`, {
    method: init.method ?? 'GET',
    headers: { 'content-type': 'application/fhir+json' },
    ...(init.body ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  if (res.status >= 300) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function pool<T>(items: T[], concurrency: number, fn: (item: T, i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  }));
}

async function createSubscriptions(base: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i += 500) {
    const entry = Array.from({ length: Math.min(500, n - i) }, () => ({ resource: subscription, request: { method: 'POST', url: 'Subscription' } }));
    const out = await fhir(base, '', { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry } });
    for (const e of out.entry) ids.push(String(e.response.location).split('/')[1]);
  }
  return ids;
}

async function token(base: string, id: string): Promise<{ token: string; url: string }> {
  return tokenOf(await fhir(base, `Subscription/${id}/$get-ws-binding-token`));
}

/** One token per subscription (each client binds only its own), asked for 500 at a time in transaction Bundles. */
async function tokens(base: string, ids: string[]): Promise<{ token: string; url: string }[]> {
  const out: { token: string; url: string }[] = [];
  for (let i = 0; i < ids.length; i += 500) {
    const entry = ids.slice(i, i + 500).map((id) => ({ request: { method: 'GET', url: `Subscription/${id}/$get-ws-binding-token` } }));
    const res = await fhir(base, '', { method: 'POST', body: { resourceType: 'Bundle', type: 'transaction', entry } });
    for (const e of res.entry) out.push(tokenOf(e.resource));
  }
  return out;
}

function tokenOf(p: { parameter: { name: string; valueString?: string; valueUrl?: string }[] }): { token: string; url: string } {
  const v = (name: string) => p.parameter.find((x) => x.name === name);
  return { token: v('token')?.valueString as string, url: v('websocket-url')?.valueUrl as string };
}

/** N bound clients; `received[i]` = arrival times (performance.now) of client i's event notifications. */
class Clients {
  readonly sockets: WebSocket[] = [];
  readonly received: number[][] = [];
  private waiter?: () => void;

  async bind(bindings: { token: string; url: string }[]): Promise<void> {
    let handshakes = 0;
    const all = new Promise<void>((resolve) => (this.waiter = resolve));
    await pool(bindings, 200, async (b, i) => {
      const ws = new WebSocket(b.url);
      this.sockets[i] = ws;
      this.received[i] = [];
      ws.on('message', (data: Buffer) => {
        // Cheap classification: parsing JSON in this process would inflate the latency measured.
        if (data.includes('"event-notification"')) {
          if (this.received[i].push(performance.now()) === this.target) this.reached++;
          this.check();
        } else if (data.includes('"handshake"')) {
          if (++handshakes === bindings.length) this.waiter?.();
        }
      });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      ws.send(`bind-with-token ${b.token}`);
    });
    await bounded(all, 'handshakes');
  }

  private target = 0;
  /** Clients with `target` notifications: counted, not scanned per message (that was O(N²) per round). */
  private reached = 0;
  private done?: () => void;
  private check(): void {
    if (this.done && this.reached === this.received.length) {
      const d = this.done;
      this.done = undefined;
      d();
    }
  }

  /** Resolves once every client has received `count` event notifications. */
  until(count: number): Promise<void> {
    this.target = count;
    this.reached = this.received.filter((r) => r.length >= count).length;
    const p = new Promise<void>((resolve) => (this.done = resolve));
    this.check();
    return bounded(p, `${count} events on every client`);
  }

  async close(): Promise<void> {
    await Promise.all(this.sockets.map((ws) => new Promise<void>((resolve) => {
      if (ws.readyState === WebSocket.CLOSED) return resolve();
      ws.once('close', () => resolve());
      ws.terminate();
    })));
  }
}

function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let t: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (t = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), PHASE_LIMIT_MS)))]).finally(() => clearTimeout(t));
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
const ms = (x: number) => x.toFixed(1);
const s = (x: number) => (x / 1000).toFixed(1);

async function startServer(backend: string): Promise<{ server: ServerProcess; cleanup: () => Promise<void> }> {
  const common = ['--ws-max-bindings', '100000', '--ws-token-lifetime', '3600', '--ws-idle-timeout', '600', '--max-count', '1000', '--body-limit', '67108864'];
  const { server, stop } = await startBenchServer(backend, { databaseUrl: values['database-url'], args: common, pgliteInMemory: true });
  return { server, cleanup: stop };
}

async function latency(backend: string, shape: Shape, n: number, rounds: number): Promise<void> {
  const { server, cleanup } = await startServer(backend);
  const clients = new Clients();
  try {
    const base = server.baseUrl;
    const setup = performance.now();
    const ids = await bounded(createSubscriptions(base, shape === 'shared' ? 1 : n), 'creating subscriptions');
    const created = performance.now();
    const bindings = await bounded(shape === 'shared' ? token(base, ids[0]).then((t) => Array.from({ length: n }, () => t)) : tokens(base, ids), 'tokens');
    const issued = performance.now();
    await clients.bind(bindings);
    const bound = performance.now();
    const setupS = (bound - setup) / 1000;
    console.error(`[${backend} ${shape} ${n}] setup: create ${s(created - setup)} s, tokens ${s(issued - created)} s, connect + bind ${s(bound - issued)} s`);
    const all: number[] = [];
    const maxima: number[] = [];
    for (let r = 1; r <= rounds; r++) {
      const t0 = performance.now();
      await fhir(base, 'Encounter', { method: 'POST', body: encounter });
      await clients.until(r);
      const lat = clients.received.map((times) => times[r - 1] - t0).sort((a, b) => a - b);
      all.push(...lat);
      maxima.push(lat[lat.length - 1]);
    }
    all.sort((a, b) => a - b);
    maxima.sort((a, b) => a - b);
    console.log(`| ${backend} | ${shape} | ${n} | ${rounds} | ${ms(pct(all, 50))} | ${ms(pct(all, 99))} | ${ms(all[all.length - 1])} | ${ms(pct(maxima, 50))} | ${setupS.toFixed(1)} |`);
  } finally {
    await clients.close();
    await cleanup();
  }
}

async function sustained(backend: string, n: number, writes: number): Promise<void> {
  const { server, cleanup } = await startServer(backend);
  const clients = new Clients();
  try {
    const base = server.baseUrl;
    const [id] = await createSubscriptions(base, 1);
    const t = await token(base, id);
    await clients.bind(Array.from({ length: n }, () => t));
    const t0 = performance.now();
    let writesDone = 0;
    await pool(Array.from({ length: writes }), 8, async () => {
      await fhir(base, 'Encounter', { method: 'POST', body: encounter });
      writesDone = performance.now();
    });
    await clients.until(writes);
    const elapsed = (performance.now() - t0) / 1000;
    const lag = clients.received.map((times) => times[writes - 1]).reduce((a, b) => Math.max(a, b), 0) - writesDone;
    console.log(`| ${backend} | ${n} | ${writes} | ${(writes / ((writesDone - t0) / 1000)).toFixed(0)} | ${(writes / elapsed).toFixed(0)} | ${((writes * n) / elapsed).toFixed(0)} | ${ms(lag)} |`);
  } finally {
    await clients.close();
    await cleanup();
  }
}

const backends = values.backends.split(',');
const shapes = values.shapes.split(',') as Shape[];
const sizes = values.clients.split(',').map(Number);
const conditions = await describeConditions(backends.includes('pg') ? values['database-url'] : undefined); // before the load
console.log(`websocket fan-out: ${new Date().toISOString()}, ${conditions}; loopback, server in its own process, clients + writer in this one`);
console.log('\n| backend | shape | clients | rounds | p50 ms | p99 ms | max ms | all-notified ms (median of rounds) | setup s |');
console.log('|---|---|---|---|---|---|---|---|---|');
for (const backend of backends) for (const shape of shapes) for (const n of sizes) await latency(backend, shape, n, Number(values.rounds));
if (Number(values['sustained-clients']) > 0) {
  console.log('\n| backend | clients | writes | writes/s | events/s to all clients | notifications/s | last-write → all received ms |');
  console.log('|---|---|---|---|---|---|---|');
  for (const backend of backends) await sustained(backend, Number(values['sustained-clients']), Number(values.writes));
}
