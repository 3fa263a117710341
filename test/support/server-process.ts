/**
 * Runs Clarion as a real child process (`tsx src/server/cli.ts serve …`), for tests that must kill
 * it (SIGKILL) or run several processes on one database.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface ServerProcess {
  baseUrl: string;
  proc: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<number | null>;
  stderr: () => string;
  /** SIGTERM (a graceful shutdown), resolving once the process has exited. */
  stop: () => Promise<void>;
}

/** Starts `clarion serve` (baseUrl: where it listens), or with `command: 'worker'` a worker (baseUrl empty). */
export async function startServerProcess(args: string[], env: NodeJS.ProcessEnv = {}, command: 'serve' | 'worker' = 'serve'): Promise<ServerProcess> {
  // CLARION_SERVER_NODE_ARGS: extra Node options for the server process (e.g. --cpu-prof when profiling a benchmark).
  const nodeArgs = process.env.CLARION_SERVER_NODE_ARGS?.split(' ').filter(Boolean) ?? [];
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', 'src/server/cli.ts', command, '--port', '0', '--log-level', 'warn', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  proc.stderr?.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: proc.stdout });
  const baseUrl = await new Promise<string>((resolve, reject) => {
    lines.on('line', (line) => {
      const m = /listening at (\S+)/.exec(line);
      if (m) resolve(m[1]);
      else if (command === 'worker' && line.startsWith('Clarion worker running')) resolve('');
    });
    void exited.then((code) => reject(new Error(`server exited (${code}) before listening:\n${err}`)));
  });
  const stop = async (): Promise<void> => {
    proc.kill('SIGTERM');
    await exited;
  };
  return { baseUrl, proc, exited, stderr: () => err, stop };
}
