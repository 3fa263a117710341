/**
 * What locking subscription state rows in id order costs a fan-out event statement. Since session 10
 * the event writer's statements first lock the triggered subscriptions' rows in id order
 * (`locked AS (… ORDER BY subscription_id FOR UPDATE)`, src/subscriptions/event-writer.ts) so that
 * they cannot deadlock with creates numbering their own events (insert-time-events.ts); before, the
 * UPDATE took the rows in whatever order its plan met them. Both shapes, on N subscription_state rows
 * of the real schema (migrations applied to a fresh PostgreSQL schema), one event per subscription,
 * alternating, each execution in a transaction rolled back so every run starts from the same rows.
 *
 *   npx tsx bench/fanout-locking.ts [--subs 1,100,10000] [--rows 100000] [--runs 30] [--database-url postgres://…]
 */
import { parseArgs } from 'node:util';
import pg from 'pg';
import { openDb } from '../src/store/open-db.js';
import { describeConditions } from './conditions.js';

const { values } = parseArgs({
  options: {
    subs: { type: 'string', default: '1,100,10000' },
    runs: { type: 'string', default: '30' },
    /** subscription_state rows in all (at least the largest --subs). */
    rows: { type: 'string', default: '100000' },
    'database-url': { type: 'string', default: process.env.CLARION_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres' },
  },
});
const RUNS = Number(values.runs);

const EVENT = `stored AS (
       INSERT INTO subscription_events (subscription_id, event_number, occurred_at, change_seq, focus_type, focus_id, focus_version, interaction, additional_context)
       SELECT b.subscription_id, b.before + 1, now(), 1, 'Encounter', 'e1', 1, 'create', '[]'::jsonb FROM bumped b
     ) SELECT count(*) AS n FROM bumped`;
const SHAPES: Record<string, string> = {
  'lock in id order, then update': `WITH locked AS (
       SELECT s.subscription_id FROM subscription_state s
        WHERE s.subscription_id = ANY($1::text[]) AND s.status IN ('active', 'error')
        ORDER BY s.subscription_id FOR UPDATE OF s
     ), bumped AS (
       UPDATE subscription_state s SET events_since_start = s.events_since_start + 1, updated_at = now()
         FROM locked l WHERE s.subscription_id = l.subscription_id
       RETURNING s.subscription_id, s.events_since_start - 1 AS before
     ), ${EVENT}`,
  'update directly (before session 10)': `WITH bumped AS (
       UPDATE subscription_state s SET events_since_start = s.events_since_start + 1, updated_at = now()
        WHERE s.subscription_id = ANY($1::text[]) AND s.status IN ('active', 'error')
       RETURNING s.subscription_id, s.events_since_start - 1 AS before
     ), ${EVENT}`,
};

const conditions = await describeConditions(values['database-url']);
const schema = `bench_fanout_${Date.now()}`;
const admin = new pg.Client({ connectionString: values['database-url'] });
await admin.connect();
await admin.query(`CREATE SCHEMA ${schema}`);
const url = new URL(values['database-url']);
url.searchParams.set('options', `-c search_path=${schema}`);
// Opening applies the migrations: the real subscription_state and subscription_events.
const db = await openDb({ kind: 'pg', connectionString: values['database-url'], schema });
const client = new pg.Client({ connectionString: url.toString() });
const rows: string[] = [];
try {
  await client.connect();
  const sizes = values.subs.split(',').map(Number);
  const total = Math.max(Number(values.rows), ...sizes);
  await client.query(
    `INSERT INTO subscription_state (subscription_id, topic_url, channel_type, status)
     SELECT 'sub-' || lpad(i::text, 6, '0'), 'http://example.org/topic', 'rest-hook', 'active' FROM generate_series(1, $1) i`,
    [total],
  );
  await client.query('ANALYZE subscription_state');
  for (const n of sizes) {
    // Ids in a shuffled order, as a matcher hands them over.
    const ids = Array.from({ length: n }, (_, i) => `sub-${String(i + 1).padStart(6, '0')}`).sort(() => Math.random() - 0.5);
    const times: Record<string, number[]> = Object.fromEntries(Object.keys(SHAPES).map((k) => [k, []]));
    for (let run = 0; run < RUNS + 2; run++) {
      for (const [name, sql] of Object.entries(SHAPES)) {
        await client.query('BEGIN');
        const t = performance.now();
        const { rows: r } = await client.query<{ n: string }>(sql, [ids]);
        const ms = performance.now() - t;
        await client.query('ROLLBACK');
        if (Number(r[0].n) !== n) throw new Error(`${name}: ${r[0].n} of ${n} rows`);
        if (run >= 2) times[name].push(ms); // the first two plan and warm the cache
      }
    }
    for (const [name, ts] of Object.entries(times)) {
      ts.sort((a, b) => a - b);
      rows.push(`| ${n} | ${name} | ${ts[Math.floor(ts.length / 2)].toFixed(2)} | ${ts[Math.floor(ts.length * 0.9)].toFixed(2)} |`);
    }
  }
} finally {
  await client.end();
  await db.close();
  await admin.query(`DROP SCHEMA ${schema} CASCADE`);
  await admin.end();
}
console.log(`\nClarion fan-out event statement — ${new Date().toISOString()}`);
console.log(`conditions: ${conditions}; ${Math.max(Number(values.rows), ...values.subs.split(',').map(Number))} subscription_state rows; ${RUNS} runs per cell after 2 unmeasured, shapes alternating, each in a rolled-back transaction\n`);
console.log('| subscriptions triggered | statement | median ms | p90 ms |');
console.log('|---:|---|---:|---:|');
for (const r of rows) console.log(r);
