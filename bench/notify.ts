/**
 * Notification throughput and latency with many subscriptions. For each S (non-matching rest-hook
 * subscriptions, all active, each filtered on its own patient) plus ONE matching subscription, and each
 * concurrency, writes Encounters that trigger the matching subscription and measures: writes/s,
 * write→receipt latency (p50/p95/p99), delivered/expected, duplicates and out-of-order notifications.
 * The server runs as its own process; the receiver and load generator share this one; loopback only;
 * every phase is bounded in count and time.
 *
 *   npx tsx bench/notify.ts [--subs 0,100,1000,100000] [--concurrency 1,16] [--writes 2000] [--backends pglite,pg]
 *                           [--max-count 1,100] [--filler websocket|rest-hook] [--pipeline in-process|separate] [--warmup 24000]
 *                           [--settle 12000] [--rounds 1] [--rate 0,2000] [--timeline DIR] [--client raw|undici]
 *
 * `--max-count`: the matching subscription's backport-max-count per row (1 = one event per notification,
 * as without the extension; N lets a busy subscription receive up to N events per notification).
 * `--filler`: the channel of the S non-matching subscriptions. `websocket` ones are active at once (no
 * handshake), which makes S = 100,000 quick to set up; `rest-hook` ones each take a handshake first.
 * Matching and finding due work treat both alike (indexed by topic and filter; idle rows are in no
 * due-work index).
 * `--rate`: writes per second offered, per row (0 = as fast as the `--concurrency` writers go, a closed
 * loop). With a rate, write i is due at start + i/rate and sent then by a free writer (at most
 * `--concurrency` in flight); latencies count from when it was due, so a writer that falls behind
 * shows as latency instead of hiding it (no coordinated omission).
 * `--settle`: unmeasured writes on every server once all are set up (each S's subscriptions created and
 * the CHECKPOINT after them), before the first row: so the rows at S measure a server that holds S
 * subscriptions, not one that has just created them or sat idle meanwhile (0 = none).
 * `--rounds`: how many times every row is measured. Each S has its own server (own database schema),
 * all set up first; rounds then alternate between them, so that rows compared across S run seconds
 * apart, and the summary gives medians and each round's S-vs-S=0 ratio.
 * `--client`: what sends the measured writes: `raw` (raw-http-client.ts, about half the CPU per request
 * of the other) or `undici` (its Pool.request, as before session 16). Everything else uses undici.
 * `--timeline DIR`: per row, a CSV of every write (wall-clock time it was due or sent, offset in the row,
 * write ms, 201→notification ms) in DIR, and the row's slowest 100 ms windows on stderr, with wall-clock
 * times to lay beside PostgreSQL's log (checkpoints) or the server's.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Pool } from 'undici';
import { startBenchServer } from './bench-server.js';
import { encounterWriter } from './encounter-writer.js';
import { describeConditions } from './conditions.js';
import { cpuSince, cpuSnapshot, postgresPids } from './cpu-usage.js';
import { startPauseProbe, type Pauses } from './pause-probe.js';

const { values } = parseArgs({
  options: {
    subs: { type: 'string', default: '0,100,1000,100000' },
    concurrency: { type: 'string', default: '1,16' },
    writes: { type: 'string', default: '2000' },
    backends: { type: 'string', default: 'pglite,pg' },
    'max-count': { type: 'string', default: '1,100' },
    filler: { type: 'string', default: 'websocket' },
    pipeline: { type: 'string', default: 'in-process' },
    warmup: { type: 'string', default: '24000' },
    settle: { type: 'string', default: '12000' },
    rounds: { type: 'string', default: '1' },
    rate: { type: 'string', default: '0' },
    client: { type: 'string', default: 'raw' },
    timeline: { type: 'string' },
    'database-url': { type: 'string', default: process.env.CLARION_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
const ADMISSION = 'http://hl7.org/SubscriptionTopic/admission';
const WRITES = Number(values.writes);
/**
 * Unmeasured writes before the first row, so that no row pays for the server's start-up transient: on
 * the 2-vCPU machines of this project its CPU per write falls from ~0.5 ms in the first 6,000 writes
 * to ~0.22 ms after about 20,000 (JIT tiers, inline caches, heap growth; bench/README.md, session 13).
 */
const WARMUP = Number(values.warmup);
/**
 * Unmeasured writes after creating S subscriptions. The first row after creating 100,000 of them ran
 * ~20% slower than the ones after it, with every process's CPU per write up, the load generator's too
 * (whose work does not depend on S), and full-page WAL images from the first changes after the
 * CHECKPOINT: the after-effects of the set-up, not of holding S subscriptions (bench/README.md, session 14).
 */
const SETTLE = Number(values.settle);
const ROUNDS = Number(values.rounds);
const DELIVERY_WAIT_MS = 60_000;

/** A receiver that records, per subscription id, event numbers and arrival times of event notifications. */
class Receiver {
  server!: Server;
  url = '';
  handshakes = 0;
  /** matching subscription's events: [eventNumber, focusId, arrival ms] */
  events: [number, string, number][] = [];
  matchId = '';
  /** Event notifications received for the matching subscription. */
  notifications = 0;
  /** Distinct event numbers among `events` (kept as they arrive: waiters test it on every request). */
  distinct = new Set<number>();
  private waiters: { pred: () => boolean; resolve: () => void }[] = [];

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = performance.now();
        res.statusCode = 200;
        res.end();
        const body = Buffer.concat(chunks).toString('utf8');
        // Cheap parse: only the matching subscription's event notifications need the full JSON.
        if (body.includes('"handshake"')) this.handshakes++;
        else if (this.matchId && body.includes(`/Subscription/${this.matchId}/$status`) && body.includes('"event-notification"')) {
          this.notifications++;
          const b = JSON.parse(body) as { entry: { resource: { parameter: { name: string; part?: { name: string; valueString?: string; valueReference?: { reference: string } }[] }[] } }[] };
          for (const p of b.entry[0].resource.parameter) {
            if (p.name !== 'notification-event') continue;
            const n = Number(p.part?.find((x) => x.name === 'event-number')?.valueString);
            const focus = p.part?.find((x) => x.name === 'focus')?.valueReference?.reference ?? '';
            this.events.push([n, focus.slice(focus.lastIndexOf('/') + 1), at]);
            this.distinct.add(n);
          }
        }
        if (this.waiters.length > 0) this.waiters = this.waiters.filter((w) => (w.pred() ? (w.resolve(), false) : true));
      });
    });
    this.server.keepAliveTimeout = 60_000;
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
  }

  until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
    if (pred()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.waiters.push({ pred, resolve: () => (clearTimeout(t), resolve(true)) });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

function subscription(endpoint: string, patient: string, maxCount = 1) {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'bench',
    criteria: ADMISSION,
    _criteria: { extension: [{ url: `${IG}backport-filter-criteria`, valueString: `Encounter?patient=${patient}` }] },
    channel: {
      ...(maxCount > 1 ? { extension: [{ url: `${IG}backport-max-count`, valuePositiveInt: maxCount }] } : {}),
      type: 'rest-hook', endpoint, payload: 'application/fhir+json', _payload: { extension: [{ url: `${IG}backport-payload-content`, valueCode: 'id-only' }] },
    },
  };
}

async function request(pool: Pool, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: any }> {
  const res = await pool.request({ method, path, headers: { 'content-type': 'application/fhir+json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.body.text();
  return { status: res.statusCode, json: text ? JSON.parse(text) : undefined };
}

/** A non-matching subscription (filtered on its own patient) on the filler channel. */
function filler(endpoint: string, patient: string) {
  const sub = subscription(endpoint, patient);
  if (values.filler !== 'websocket') return sub;
  const { endpoint: _unused, ...channel } = sub.channel;
  return { ...sub, channel: { ...channel, type: 'websocket' } };
}

/** Creates `count` non-matching subscriptions in transaction bundles and waits until they are active. */
async function addSubscriptions(pool: Pool, base: string, receiver: Receiver, from: number, count: number): Promise<void> {
  const target = receiver.handshakes + count;
  const batch = 500;
  for (let i = 0; i < count; i += batch) {
    const entries = Array.from({ length: Math.min(batch, count - i) }, (_, j) => ({
      resource: filler(receiver.url, `Patient/nm-${from + i + j}`),
      request: { method: 'POST', url: 'Subscription' },
    }));
    const r = await request(pool, 'POST', base, { resourceType: 'Bundle', type: 'transaction', entry: entries });
    if (r.status !== 200) throw new Error(`subscription bundle failed: ${r.status} ${JSON.stringify(r.json).slice(0, 300)}`);
  }
  if (values.filler === 'websocket') {
    // Active at create; the event writer registers them in order, before any later write is matched.
    return;
  }
  const ok = await receiver.until(() => receiver.handshakes >= target, 600_000);
  if (!ok) throw new Error(`only ${receiver.handshakes}/${target} handshakes arrived`);
}

interface Row {
  backend: string;
  s: number;
  concurrency: number;
  maxCount: number;
  /** Writes/s offered (0: closed loop). */
  rate: number;
  writes: number;
  notifications: number;
  writesPerSec: number;
  p50: number;
  p95: number;
  p99: number;
  /** The write alone (POST → 201 at the client): p50 and p99 ms. */
  writeP50: number;
  writeP99: number;
  /** From the 201's arrival at the client to the notification's: the pipeline after the write, p50 and p99 ms. */
  afterP50: number;
  afterP99: number;
  delivered: number;
  duplicates: number;
  outOfOrder: number;
  /** CPU ms per write while the row ran: Clarion's process(es), PostgreSQL's, this load + receiver process. */
  cpu: { server: number; pg: number; load: number };
  /** PostgreSQL WAL flushes (pg_stat_wal.wal_sync, the whole cluster) per write while the row ran; NaN for PGlite. */
  walFlushes: number;
  /** Transactions committed in the database (pg_stat_database.xact_commit) per write while the row ran; NaN for PGlite. */
  commits: number;
  /** WAL written per write (kB) and the full-page images in it (pg_stat_wal, whole cluster); NaN for PGlite. */
  walKb: number;
  fullPageImages: number;
  /** Which of the --rounds this row was measured in. */
  round?: number;
  /** Machine pauses (pause-probe.ts) while the row's writes ran. */
  pauses: Pauses;
}

/** The cluster's WAL flushes (pg_stat_wal, PostgreSQL 14+) and the database's commits so far, or NaN without PostgreSQL. */
type PgCounters = () => Promise<{ walFlushes: number; commits: number; walBytes: number; fullPageImages: number }>;

let phases = 0;

async function phase(pool: Pool, origin: string, base: string, receiver: Receiver, concurrency: number, maxCount: number, rate: number, backend: string, s: number, serverPids: number[], pgCounters: PgCounters, writes = WRITES): Promise<Row> {
  receiver.events = [];
  receiver.distinct = new Set();
  receiver.notifications = 0;
  // Its own patient per row, so that no earlier row's matching subscription matches this row's writes.
  const patient = `Patient/match-${++phases}-${s}-${concurrency}-${maxCount}`;
  // The matching subscription is new for every phase, so its event numbers start at 1.
  const created = await request(pool, 'POST', `${base}/Subscription`, subscription(receiver.url, patient, maxCount));
  receiver.matchId = created.json.id as string;
  const handshakes = receiver.handshakes;
  await receiver.until(() => receiver.handshakes > handshakes, 30_000);
  // The status turns active just after the handshake's answer: wait for it (bounded) before writing.
  for (let t = performance.now(); ; ) {
    const got = await request(pool, 'GET', `${base}/Subscription/${receiver.matchId}`);
    if (got.json?.status === 'active') break;
    if (performance.now() - t > 30_000) throw new Error(`subscription ${receiver.matchId} did not turn active`);
    await new Promise((r) => setTimeout(r, 20));
  }

  /** Per written id: when the write was due (sent, in a closed loop) and when its 201 arrived. */
  const sentAt = new Map<string, number>();
  const answeredAt = new Map<string, number>();
  const writeMs: number[] = [];
  let next = 0;
  const body = JSON.stringify({
    resourceType: 'Encounter',
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    subject: { reference: patient },
  });
  // One connection per writer, as the undici pool opens under this load.
  const writer = await encounterWriter(values.client, pool, origin, `${base}/Encounter`, body, concurrency);
  const cpuServer = cpuSnapshot(() => serverPids);
  const cpuPg = cpuSnapshot(postgresPids);
  const cpuLoad = process.cpuUsage();
  const pgBefore = await pgCounters();
  const start = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < writes) {
        const i = next++;
        let t0 = performance.now();
        if (rate > 0) {
          const due = start + (i * 1000) / rate;
          if (due > t0) await new Promise((r) => setTimeout(r, due - t0));
          t0 = due;
        }
        const id = await writer.create();
        const t1 = performance.now();
        sentAt.set(id, t0);
        answeredAt.set(id, t1);
        writeMs.push(t1 - t0);
      }
    }),
  );
  const end = performance.now();
  writer.close();
  const elapsed = (end - start) / 1000;
  const pauses = probe.between(performance.timeOrigin + start, performance.timeOrigin + end);
  await receiver.until(() => receiver.distinct.size >= writes, DELIVERY_WAIT_MS);
  const loadUs = process.cpuUsage(cpuLoad);
  const cpu = { server: cpuSince(cpuServer) / writes, pg: cpuSince(cpuPg) / writes, load: (loadUs.user + loadUs.system) / 1000 / writes };
  const pgAfter = await pgCounters();

  const numbers = receiver.events.map((e) => e[0]);
  let outOfOrder = 0;
  let max = 0;
  for (const n of numbers) {
    if (n < max) outOfOrder++;
    max = Math.max(max, n);
  }
  const seen = new Set<number>();
  const firsts = receiver.events.filter((e) => !seen.has(e[0]) && seen.add(e[0]) && sentAt.has(e[1]));
  const lat = firsts.map((e) => e[2] - sentAt.get(e[1])!).sort((a, b) => a - b);
  const after = firsts.map((e) => e[2] - answeredAt.get(e[1])!).sort((a, b) => a - b);
  if (values.timeline) timeline(`${backend}-${phases}-S${s}-c${concurrency}-m${maxCount}-r${rate || 'max'}`, start, sentAt, answeredAt, firsts);
  const quantile = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? NaN;
  const q = (p: number) => quantile(lat, p);
  writeMs.sort((a, b) => a - b);
  return {
    backend, s, concurrency, maxCount, rate, writes, notifications: receiver.notifications, writesPerSec: writes / elapsed,
    p50: q(0.5), p95: q(0.95), p99: q(0.99), writeP50: quantile(writeMs, 0.5), writeP99: quantile(writeMs, 0.99),
    afterP50: quantile(after, 0.5), afterP99: quantile(after, 0.99),
    delivered: receiver.distinct.size, duplicates: numbers.length - receiver.distinct.size, outOfOrder, cpu,
    walFlushes: (pgAfter.walFlushes - pgBefore.walFlushes) / writes, commits: (pgAfter.commits - pgBefore.commits) / writes, pauses,
    walKb: (pgAfter.walBytes - pgBefore.walBytes) / 1024 / writes, fullPageImages: (pgAfter.fullPageImages - pgBefore.fullPageImages) / writes,
  };
}

/**
 * Writes the row's per-write CSV to the --timeline directory and prints its slowest 100 ms windows (by
 * their slowest write), so that a stall can be placed in time and laid beside PostgreSQL's log.
 */
function timeline(name: string, start: number, sentAt: Map<string, number>, answeredAt: Map<string, number>, receipts: [number, string, number][]): void {
  const received = new Map(receipts.map((e) => [e[1], e[2]]));
  const wall = (t: number) => new Date(performance.timeOrigin + t).toISOString();
  const rows = [...sentAt].map(([id, t0]) => ({ t0, write: answeredAt.get(id)! - t0, after: (received.get(id) ?? NaN) - answeredAt.get(id)! })).sort((a, b) => a.t0 - b.t0);
  mkdirSync(values.timeline!, { recursive: true });
  const file = join(values.timeline!, `${name}.csv`);
  writeFileSync(file, 'wall,offset_ms,write_ms,after_201_ms\n' + rows.map((r) => `${wall(r.t0)},${(r.t0 - start).toFixed(2)},${r.write.toFixed(2)},${r.after.toFixed(2)}`).join('\n') + '\n');
  const windows = new Map<number, { n: number; worstWrite: number; worstAfter: number }>();
  for (const r of rows) {
    const w = Math.floor((r.t0 - start) / 100);
    const got = windows.get(w) ?? { n: 0, worstWrite: 0, worstAfter: 0 };
    got.n++;
    got.worstWrite = Math.max(got.worstWrite, r.write);
    got.worstAfter = Math.max(got.worstAfter, r.after);
    windows.set(w, got);
  }
  const worst = [...windows].sort((a, b) => b[1].worstWrite - a[1].worstWrite).slice(0, 5);
  console.error(`[timeline] ${file}; slowest 100 ms windows: ` + worst.map(([w, x]) => `${wall(start + w * 100).slice(11, 23)} (+${w * 100} ms, ${x.n} writes, write max ${x.worstWrite.toFixed(1)} ms, after-201 max ${x.worstAfter.toFixed(1)} ms)`).join('; '));
}

/** One server holding S non-matching subscriptions, warmed up and settled, ready for rows. */
interface Target {
  s: number;
  origin: string;
  base: string;
  pool: Pool;
  pids: number[];
  /** The server's (and worker's) stderr so far: warnings and errors (log level warn). */
  logs: () => string;
  stop: () => Promise<void>;
}

async function startTarget(backend: string, s: number, receiver: Receiver, stats: pg.Client | undefined, pgCounters: PgCounters): Promise<Target> {
  const { server, worker, stop } = await startBenchServer(backend, {
    databaseUrl: values['database-url'],
    separatePipeline: values.pipeline === 'separate',
    args: ['--endpoint-allow', '127.0.0.1/32', '--allow-http', '--handshake-delay', '0'],
  });
  const url = new URL(server.baseUrl);
  const pool = new Pool(url.origin, { connections: 32 });
  const pids = [server.proc.pid, worker?.proc.pid].filter((p): p is number => p !== undefined);
  const logs = () => [server.stderr(), worker?.stderr() ?? ''].join('\n').trim();
  const target = { s, origin: url.origin, base: url.pathname, pool, pids, logs, stop: async () => (await pool.close(), await stop()) };
  try {
    if (WARMUP > 0) {
      // Its matching subscription stays, and matches nothing later (each row has its own patient).
      await phase(pool, url.origin, url.pathname, receiver, 16, 100, 0, backend, -1, pids, pgCounters, WARMUP);
      console.error(`[${backend}] S=${s} warm-up: ${WARMUP} writes`);
    }
    if (s > 0) {
      const t = performance.now();
      await addSubscriptions(pool, url.pathname, receiver, 0, s);
      console.error(`[${backend}] S=${s}: ${s} non-matching subscriptions active (in ${((performance.now() - t) / 1000).toFixed(1)} s)`);
      // Creating them wrote enough WAL to start a checkpoint; the first change to each page after one
      // starts writes the whole page, which doubled PostgreSQL's CPU per write in rows it overlapped.
      // Done here, the rows measure the subscriptions, not the set-up's checkpoint.
      await stats?.query('CHECKPOINT');
    }
  } catch (err) {
    await target.stop();
    throw err;
  }
  return target;
}

/**
 * One server per S, each set up before any row is measured; then `--rounds` rounds of every S's rows,
 * in ascending order in odd rounds and descending in even ones. The machine's speed drifts by tens of
 * percent over minutes (bench/README.md), so S = 100,000 is compared with S = 0 round by round, rows
 * seconds apart, rather than minutes later.
 */
async function benchBackend(backend: string, receiver: Receiver): Promise<Row[]> {
  const rows: Row[] = [];
  const stats = backend === 'pg' ? new pg.Client({ connectionString: values['database-url'] }) : undefined;
  await stats?.connect();
  const pgCounters: PgCounters = async () => {
    if (!stats) return { walFlushes: NaN, commits: NaN, walBytes: NaN, fullPageImages: NaN };
    // Statistics are sent at the end of each transaction, at most every second (PGSTAT_MIN_INTERVAL): clear the snapshot so this reads the latest.
    const { rows } = await stats.query<{ w: string; c: string; b: string; f: string }>(
      'SELECT pg_stat_clear_snapshot(), w.wal_sync AS w, w.wal_bytes AS b, w.wal_fpi AS f, (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS c FROM pg_stat_wal w',
    );
    return { walFlushes: Number(rows[0].w), commits: Number(rows[0].c), walBytes: Number(rows[0].b), fullPageImages: Number(rows[0].f) };
  };
  const targets: Target[] = [];
  try {
    for (const s of values.subs.split(',').map(Number).sort((a, b) => a - b)) targets.push(await startTarget(backend, s, receiver, stats, pgCounters));
    // Settled once every server is set up, S = 0 too: the first measured row, S = 0's, used to follow
    // minutes of idleness while the larger S were set up, and ran 10–25% slower than its later rounds.
    for (const t of SETTLE > 0 ? targets : []) {
      await phase(t.pool, t.origin, t.base, receiver, 16, 100, 0, backend, t.s, t.pids, pgCounters, SETTLE);
      console.error(`[${backend}] S=${t.s} settle: ${SETTLE} writes`);
    }
    for (let round = 1; round <= ROUNDS; round++) {
      for (const t of round % 2 === 1 ? targets : [...targets].reverse()) {
        for (const c of values.concurrency.split(',').map(Number)) {
          for (const m of values['max-count'].split(',').map(Number)) {
            for (const rate of values.rate.split(',').map(Number)) {
              const row = { ...(await phase(t.pool, t.origin, t.base, receiver, c, m, rate, backend, t.s, t.pids, pgCounters)), round };
              console.error(`[${backend}] round ${round} S=${t.s} c=${c} maxCount=${m} rate=${rate || 'max'}: ${row.writesPerSec.toFixed(0)} writes/s, p99 ${row.p99.toFixed(1)} ms, pauses ${row.pauses.count} (max ${row.pauses.maxMs.toFixed(0)} ms), ${row.delivered}/${row.writes}`);
              rows.push(row);
              if (row.delivered < row.writes) console.error(`[${backend}] S=${t.s}: ${row.writes - row.delivered} events not delivered within ${DELIVERY_WAIT_MS / 1000} s; the server's log:\n${t.logs().slice(-4000)}`);
            }
          }
        }
      }
    }
  } finally {
    for (const t of targets) await t.stop();
    await stats?.end();
  }
  return rows;
}

const conditions = await describeConditions(values.backends.includes('pg') ? values['database-url'] : undefined); // measured before the load starts
const probe = await startPauseProbe();
const receiver = new Receiver();
await receiver.start();
const all: Row[] = [];
try {
  for (const b of values.backends.split(',')) all.push(...(await benchBackend(b.trim(), receiver)));
} finally {
  await receiver.close();
  probe.stop();
}
console.log(`\nClarion notification benchmark — ${new Date().toISOString()}`);
console.log(`conditions: ${conditions}; server in its own process${values.pipeline === 'separate' ? ' (pg: event writer and delivery in a separate `clarion worker` process)' : ''}; receiver + load in this process (measured writes sent by ${values.client === 'raw' ? 'bench/raw-http-client.ts' : 'undici Pool.request'}); loopback; ` +
  `${WARMUP} unmeasured writes first (JIT warm-up)${SETTLE > 0 ? `, and ${SETTLE} per S once every S's subscriptions are created` : ''}; ${WRITES} Encounter creates per row, each triggering the one matching subscription (admission topic, id-only, rest-hook, backport-max-count per row); S non-matching active ${values.filler} subscriptions filtered on other patients, one server (and database schema) per S, all set up before the first row (PostgreSQL: CHECKPOINT after creating them)${ROUNDS > 1 ? `; ${ROUNDS} rounds, S ascending in odd rounds, descending in even ones` : ''}\n`);
console.log('CPU ms/write: CPU time per write while the row ran (writes and their notifications), of Clarion (server, plus worker if separate) / PostgreSQL (all its processes; PGlite runs inside Clarion) / this load + receiver process. WAL flushes/write: PostgreSQL\'s WAL syncs (pg_stat_wal.wal_sync, whole cluster) per write; each is a commit that waited for the disk. commits/write: transactions committed in the database per write (pg_stat_database.xact_commit; statements outside a transaction count one each). WAL kB/write: WAL written per write, whole cluster (pg_stat_wal.wal_bytes), with the full-page images per write in brackets (wal_fpi: the first change to a page after a checkpoint writes the whole 8 kB page)');
console.log('machine pauses: timer gaps over 10 ms in a separate idle process while the row\'s writes ran (count, longest ms; bench/pause-probe.ts): the machine\'s stalls, which every write in flight then waits out');
console.log('offered/s: writes per second offered (max: closed loop). p50/p95/p99: write→receipt, from sending the write (from when it was due, with a rate). after 201: from the 201 to the notification\n');
console.log('| backend | round | S | concurrency | maxCount | offered/s | writes/s | write p50/p99 ms | p50 ms | p95 ms | p99 ms | after 201 p50/p99 ms | CPU ms/write | WAL flushes/write | commits/write | WAL kB/write (full pages) | machine pauses | notifications | delivered/expected | duplicates | out-of-order |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const r of all) {
  console.log(`| ${r.backend} | ${r.round ?? 1} | ${r.s} | ${r.concurrency} | ${r.maxCount} | ${r.rate || 'max'} | ${r.writesPerSec.toFixed(0)} | ${r.writeP50.toFixed(1)}/${r.writeP99.toFixed(1)} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.p99.toFixed(1)} | ${r.afterP50.toFixed(1)}/${r.afterP99.toFixed(1)} | ${r.cpu.server.toFixed(2)} / ${r.cpu.pg.toFixed(2)} / ${r.cpu.load.toFixed(2)} | ${Number.isNaN(r.walFlushes) ? '—' : r.walFlushes.toFixed(2)} | ${Number.isNaN(r.commits) ? '—' : r.commits.toFixed(2)} | ${Number.isNaN(r.walKb) ? '—' : `${r.walKb.toFixed(1)} (${r.fullPageImages.toFixed(2)})`} | ${r.pauses.count ? `${r.pauses.count}, ${r.pauses.maxMs.toFixed(0)} ms` : '0'} | ${r.notifications} | ${r.delivered}/${r.writes} | ${r.duplicates} | ${r.outOfOrder} |`);
}
if (ROUNDS > 1) printSummary(all);

/**
 * Per row kind and S, over the rounds: median (min–max) writes/s and p99, and against S = 0 the median
 * of the rounds' own ratios (each ratio pairs two rows measured seconds apart).
 */
function printSummary(rows: Row[]): void {
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const range = (xs: number[], digits: number) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
  const kind = (r: Row) => `${r.backend}|${r.concurrency}|${r.maxCount}|${r.rate}`;
  const pct = (x: number) => `${x >= 0 ? '+' : ''}${(100 * x).toFixed(0)}%`;
  console.log(`\nOver ${ROUNDS} rounds: median (min–max); "vs S=0": the median over rounds of (row at S) / (row at S=0 in the same round) − 1\n`);
  console.log('| backend | concurrency | maxCount | offered/s | S | writes/s | p99 ms | writes/s vs S=0 | p99 vs S=0 | lost | duplicates | out-of-order |');
  console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  const groups = new Map<string, Row[]>();
  for (const r of rows) {
    const key = `${kind(r)}|${r.s}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const group of groups.values()) {
    const r0 = group[0];
    const base = groups.get(`${kind(r0)}|0`);
    const ratio = (f: (r: Row) => number) => {
      if (!base || r0.s === 0) return '—';
      const pairs = group.flatMap((r) => base.filter((b) => b.round === r.round).map((b) => f(r) / f(b) - 1));
      return pairs.length ? pct(median(pairs)) : '—';
    };
    const sum = (f: (r: Row) => number) => group.reduce((a, r) => a + f(r), 0);
    console.log(`| ${r0.backend} | ${r0.concurrency} | ${r0.maxCount} | ${r0.rate || 'max'} | ${r0.s} | ${range(group.map((r) => r.writesPerSec), 0)} | ${range(group.map((r) => r.p99), 1)} | ${ratio((r) => r.writesPerSec)} | ${ratio((r) => r.p99)} | ${sum((r) => r.writes - r.delivered)} | ${sum((r) => r.duplicates)} | ${sum((r) => r.outOfOrder)} |`);
  }
}
