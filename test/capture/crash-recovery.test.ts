/**
 * The change log survives a hard crash: the server process is killed with SIGKILL while concurrent
 * writes run; after a restart, every write the database committed appears in the change feed exactly
 * once, in commit order, and every write the client saw acknowledged is among them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ChangeFeed } from '../../src/capture/change-feed.js';
import type { Db } from '../../src/store/db.js';
import { openDb } from '../../src/store/open-db.js';
import { dropStorage, freshStorageConfig, TEST_BACKEND } from '../support/test-db.js';
import { startServerProcess } from '../support/server-process.js';
import { serverStorageArgs } from '../support/subscription-e2e.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

/** Writes Patients from `concurrency` loops until the server stops answering; returns acknowledged ids. */
async function writeUntilKilled(baseUrl: string, concurrency: number, onAck: (n: number) => void): Promise<string[]> {
  const acked: string[] = [];
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      for (let i = 0; ; i++) {
        let res: Response;
        try {
          res = await fetch(`${baseUrl}/Patient`, {
            method: 'POST',
            headers: { 'content-type': 'application/fhir+json' },
            body: JSON.stringify({ resourceType: 'Patient', name: [{ family: `L${loop}-${i}` }] }),
          });
        } catch {
          return; // the server is gone
        }
        if (res.status !== 201) throw new Error(`unexpected status ${res.status}: ${await res.text()}`);
        const body = (await res.json()) as { id: string };
        acked.push(body.id);
        onAck(acked.length);
      }
    }),
  );
  return acked;
}

async function crashOnce(args: string[], acksBeforeKill: number): Promise<string[]> {
  const server = await startServerProcess(args);
  let killed = false;
  const acked = await writeUntilKilled(server.baseUrl, 16, (n) => {
    if (n >= acksBeforeKill && !killed) {
      killed = true;
      server.proc.kill('SIGKILL');
    }
  });
  await server.exited;
  return acked;
}

/** Consumes the feed under `consumer`, logging each change in the same transaction as the position. */
async function drain(db: Db, consumer: string): Promise<void> {
  const feed = new ChangeFeed(db, { pollIntervalMs: 50 });
  const sub = feed.consume(consumer, async (changes, tx) => {
    for (const ch of changes) {
      await tx.query('INSERT INTO crash_log (seq, resource_id, version_id) VALUES ($1, $2, $3)', [ch.seq, ch.id, ch.versionId]);
    }
  });
  await sub.idle();
  await sub.stop();
  await feed.close();
}

describe('crash recovery', () => {
  it(`SIGKILL during concurrent writes loses no committed change and duplicates none (${TEST_BACKEND})`, async () => {
    let config = freshStorageConfig();
    if (config.kind === 'pglite') {
      const dir = mkdtempSync(join(tmpdir(), 'clarion-crash-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      config = { kind: 'pglite', dataDir: dir };
    } else {
      cleanups.push(() => dropStorage(config));
    }
    // Prepare the schema and the consumer's log table.
    let db = await openDb(config);
    await db.exec('CREATE TABLE crash_log (seq bigint PRIMARY KEY, resource_id text NOT NULL, version_id int NOT NULL)');
    await db.close();

    const args = serverStorageArgs(config);
    const acked1 = await crashOnce(args, 150);
    // The consumer reads part of the log, then stops (its position is persisted).
    db = await openDb(config);
    await drain(db, 'crash-test');
    await db.close();
    const acked2 = await crashOnce(args, 150);

    db = await openDb(config);
    try {
      await drain(db, 'crash-test');
      const committed = (await db.query<{ seq: number; id: string; version_id: number }>('SELECT seq, id, version_id FROM resource_history ORDER BY seq')).rows;
      const logged = (await db.query<{ seq: number; resource_id: string; version_id: number }>('SELECT seq, resource_id, version_id FROM crash_log ORDER BY seq')).rows;
      // Exactly once and in order: the log (primary key on seq) equals the committed change records.
      expect(logged.map((r) => [Number(r.seq), r.resource_id, r.version_id])).toEqual(committed.map((r) => [Number(r.seq), r.id, r.version_id]));
      // Every acknowledged write is there.
      const ids = new Set(committed.map((r) => r.id));
      const acked = [...acked1, ...acked2];
      expect(acked.length).toBeGreaterThanOrEqual(300);
      expect(acked.filter((id) => !ids.has(id))).toEqual([]);
      // Every committed change has its current row (same transaction), and vice versa.
      const current = (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM resources')).rows[0].n;
      expect(current).toBe(committed.length);
    } finally {
      await db.close();
    }
  });
});
