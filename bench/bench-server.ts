/**
 * A Clarion server process for a benchmark, on a fresh database: PGlite (a temporary data directory,
 * or in memory) or a fresh PostgreSQL schema. `stop()` ends the process and removes the database.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startServerProcess, type ServerProcess } from '../test/support/server-process.js';

export interface BenchServer {
  server: ServerProcess;
  /** The `clarion worker` process, with a separate pipeline. */
  worker?: ServerProcess;
  stop: () => Promise<void>;
}

export async function startBenchServer(
  backend: string,
  options: { databaseUrl: string; args?: string[]; pgliteInMemory?: boolean; separatePipeline?: boolean },
): Promise<BenchServer> {
  const args = options.args ?? [];
  let storage: string[];
  let drop: () => Promise<void>;
  if (backend === 'pg') {
    const schema = `bench_${Date.now()}`;
    const admin = new pg.Client({ connectionString: options.databaseUrl });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    const u = new URL(options.databaseUrl);
    u.searchParams.set('options', `-c search_path=${schema}`);
    storage = ['--database-url', u.toString()];
    drop = async () => {
      await admin.query(`DROP SCHEMA ${schema} CASCADE`);
      await admin.end();
    };
  } else if (options.pgliteInMemory) {
    storage = ['--memory'];
    drop = async () => undefined;
  } else {
    const dir = mkdtempSync(join(tmpdir(), 'clarion-bench-'));
    storage = ['--data-dir', dir];
    drop = async () => rmSync(dir, { recursive: true, force: true });
  }
  const separate = backend === 'pg' && !!options.separatePipeline;
  const server = await startServerProcess([...storage, ...args, ...(separate ? ['--pipeline', 'separate'] : [])]);
  // The worker names the server's base in notifications, so it gets the base the server listens at.
  const worker = separate ? await startServerProcess([...storage, ...args, '--base-url', server.baseUrl], {}, 'worker') : undefined;
  return {
    server,
    worker,
    stop: async () => {
      await Promise.all([server.stop(), worker?.stop()]);
      await drop();
    },
  };
}
