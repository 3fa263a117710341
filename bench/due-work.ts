/**
 * Finding due delivery work with many idle subscriptions: the delivery worker's two queries — claim due
 * subscriptions (`claimDue`, limit 16) and find when the next timed work falls due (`nextDueAt`) — with
 * S = 0, 10,000 and 100,000 active rest-hook subscriptions that have nothing due, each with a heartbeat
 * period (an hour, last sent just now) or without one. One subscription has an undelivered event, so
 * each claim finds one row (released again before the next iteration). Median and p99 over --iterations.
 *
 *   npx tsx bench/due-work.ts [--backends pg,pglite] [--iterations 200] [--database-url postgres://…]
 *
 * PostgreSQL: a fresh schema `bench_due_<time>`, dropped at the end. PGlite: in memory.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { claimDue, nextDueAt, releaseLease } from '../src/delivery/delivery-queue.js';
import type { Db } from '../src/store/db.js';
import { openDb, type StorageConfig } from '../src/store/open-db.js';
import { describeConditions } from './conditions.js';

const { values } = parseArgs({
  options: {
    backends: { type: 'string', default: 'pg,pglite' },
    iterations: { type: 'string', default: '200' },
    'database-url': { type: 'string', default: process.env.CLARION_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const ITERATIONS = Number(values.iterations);
const SIZES = [0, 10_000, 100_000];

/** Adds `count` idle active rest-hook subscriptions (nothing due), numbered from `from`. */
async function addIdle(db: Db, from: number, count: number, heartbeat: boolean): Promise<void> {
  for (let i = 0; i < count; i += 10_000) {
    const n = Math.min(10_000, count - i);
    await db.query(
      `INSERT INTO subscription_state (subscription_id, topic_url, channel_type, status, heartbeat_period, subscription_version, last_sent_at)
       SELECT 'idle-' || g, 'http://hl7.org/SubscriptionTopic/admission', 'rest-hook', 'active', $3::int, 1, now()
         FROM generate_series($1::int, $2::int) AS g`,
      [from + i, from + i + n - 1, heartbeat ? 3600 : null],
    );
  }
  await db.query('ANALYZE subscription_state');
}

function stats(ms: number[]): string {
  ms.sort((a, b) => a - b);
  const q = (p: number) => ms[Math.min(ms.length - 1, Math.floor(p * ms.length))];
  return `${q(0.5).toFixed(2)} | ${q(0.99).toFixed(2)}`;
}

async function time(fn: () => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const t = performance.now();
    await fn();
    out.push(performance.now() - t);
  }
  return out;
}

async function benchBackend(backend: string): Promise<string[]> {
  const schema = `bench_due_${Date.now()}_${randomBytes(2).toString('hex')}`;
  const rows: string[] = [];
  for (const heartbeat of [false, true]) {
    const config: StorageConfig = backend === 'pg' ? { kind: 'pg', connectionString: values['database-url'], schema: `${schema}_${heartbeat ? 'hb' : 'no'}` } : { kind: 'pglite' };
    const db = await openDb(config);
    try {
      // The one subscription with work: an undelivered event.
      await db.query(
        `INSERT INTO subscription_state (subscription_id, topic_url, channel_type, status, events_since_start, subscription_version)
         VALUES ('busy', 'http://hl7.org/SubscriptionTopic/admission', 'rest-hook', 'active', 1, 1)`,
      );
      let have = 0;
      for (const s of SIZES) {
        await addIdle(db, have, s - have, heartbeat);
        have = s;
        const claim = await time(async () => {
          const now = new Date();
          const got = await claimDue(db, 'bench', now, new Date(now.getTime() + 60_000), 16);
          if (got.length !== 1) throw new Error(`claimed ${got.length}, expected the one busy subscription`);
          await releaseLease(db, 'bench', got[0].subscriptionId);
        });
        const next = await time(() => nextDueAt(db));
        rows.push(`| ${backend} | ${s.toLocaleString('en-US')} | ${heartbeat ? 'yes' : 'no'} | ${stats(claim)} | ${stats(next)} |`);
        console.error(rows[rows.length - 1]);
      }
    } finally {
      await db.close();
      if (config.kind === 'pg') {
        const c = new pg.Client({ connectionString: values['database-url'] });
        await c.connect();
        await c.query(`DROP SCHEMA IF EXISTS ${config.schema} CASCADE`);
        await c.end();
      }
    }
  }
  return rows;
}

const backends = values.backends.split(',');
const conditions = await describeConditions(backends.includes('pg') ? values['database-url'] : undefined);
const rows: string[] = [];
for (const b of backends) rows.push(...(await benchBackend(b)));
console.log(`\nDue delivery work — ${new Date().toISOString()}`);
console.log(`conditions: ${conditions}; ${ITERATIONS} iterations per cell; claim = claimDue (limit 16, finds the one busy subscription) + its release`);
console.log('\n| backend | idle subscriptions | with heartbeat | claim p50 ms | claim p99 ms | next due p50 ms | next due p99 ms |');
console.log('|---|---:|---|---:|---:|---:|---:|');
for (const r of rows) console.log(r);
