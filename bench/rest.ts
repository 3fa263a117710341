/**
 * REST throughput: creates/s, reads/s and searches/s at concurrency 1 and 16, on PGlite and on
 * PostgreSQL. The server runs as its own process (as in production); this process only generates load
 * over loopback with undici. Every phase is bounded in time.
 *
 *   npx tsx bench/rest.ts [--seconds 5] [--backends pglite,pg] [--database-url postgres://…]
 */
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { startBenchServer } from './bench-server.js';
import { describeConditions } from './conditions.js';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    backends: { type: 'string', default: 'pglite,pg' },
    'database-url': { type: 'string', default: process.env.CLARION_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const SECONDS = Number(values.seconds);

interface Row {
  backend: string;
  op: string;
  concurrency: number;
  count: number;
  perSecond: number;
  p50: number;
  p99: number;
  errors: number;
}

function patient(i: number) {
  return JSON.stringify({
    resourceType: 'Patient',
    identifier: [{ system: 'http://bench.example/mrn', value: `mrn-${i}` }],
    name: [{ family: `Family${i % 500}`, given: [`Given${i}`] }],
    gender: i % 2 ? 'male' : 'female',
    birthDate: `19${String(50 + (i % 50)).padStart(2, '0')}-01-15`,
  });
}

async function phase(
  pool: Pool,
  concurrency: number,
  make: (i: number) => { method: 'GET' | 'POST'; path: string; body?: string },
  onBody?: (body: string) => void,
): Promise<{ count: number; perSecond: number; p50: number; p99: number; errors: number }> {
  const lat: number[] = [];
  let errors = 0;
  let i = 0;
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const req = make(i++);
        const t0 = performance.now();
        const res = await pool.request({
          method: req.method,
          path: req.path,
          headers: { 'content-type': 'application/fhir+json', accept: 'application/fhir+json' },
          body: req.body,
        });
        const text = await res.body.text();
        lat.push(performance.now() - t0);
        if (res.statusCode >= 300) errors++;
        else onBody?.(text);
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] ?? 0;
  return { count: lat.length, perSecond: lat.length / elapsed, p50: q(0.5), p99: q(0.99), errors };
}

async function benchBackend(backend: string): Promise<Row[]> {
  const { server, stop } = await startBenchServer(backend, { databaseUrl: values['database-url'] });
  const url = new URL(server.baseUrl);
  const pool = new Pool(url.origin, { connections: 32, pipelining: 1 });
  const base = url.pathname;
  const rows: Row[] = [];
  const ids: string[] = [];
  try {
    for (const concurrency of [1, 16]) {
      const c = await phase(pool, concurrency, (i) => ({ method: 'POST', path: `${base}/Patient`, body: patient(i + concurrency * 1_000_000) }), (b) => {
        if (ids.length < 10_000) ids.push((JSON.parse(b) as { id: string }).id);
      });
      rows.push({ backend, op: 'create', concurrency, ...c });
      const r = await phase(pool, concurrency, (i) => ({ method: 'GET', path: `${base}/Patient/${ids[i % ids.length]}` }));
      rows.push({ backend, op: 'read', concurrency, ...r });
      const s = await phase(pool, concurrency, (i) => ({ method: 'GET', path: `${base}/Patient?identifier=http://bench.example/mrn|mrn-${1_000_000 + (i % 500)}` }));
      rows.push({ backend, op: 'search (token)', concurrency, ...s });
      const s2 = await phase(pool, concurrency, (i) => ({ method: 'GET', path: `${base}/Patient?family=Family${i % 500}&_count=10` }));
      rows.push({ backend, op: 'search (string)', concurrency, ...s2 });
    }
  } finally {
    await pool.close();
    await stop();
  }
  return rows;
}

const conditions = await describeConditions(values.backends.includes('pg') ? values['database-url'] : undefined); // before the load
const all: Row[] = [];
for (const b of values.backends.split(',')) all.push(...(await benchBackend(b.trim())));
console.log(`\nClarion REST benchmark — ${new Date().toISOString()}`);
console.log(`conditions: ${conditions}; server in its own process, load over loopback (undici), ${SECONDS}s per phase, Patient ~300 bytes\n`);
console.log('| backend | operation | concurrency | requests | req/s | p50 ms | p99 ms | errors |');
console.log('|---|---|---:|---:|---:|---:|---:|---:|');
for (const r of all) {
  console.log(`| ${r.backend} | ${r.op} | ${r.concurrency} | ${r.count} | ${r.perSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} |`);
}
