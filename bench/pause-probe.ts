/**
 * Machine pauses during a benchmark, seen by a separate process that does nothing but run a 2 ms timer
 * and note every gap longer than `thresholdMs`. A process that does nothing has nothing of its own to
 * wait for: a long gap is the machine's — the virtual machine descheduled by its host, the kernel
 * busy — or CPUs so saturated that even a task waking from sleep waits. On the 2-vCPU machines here,
 * gaps of 25–40 ms hit every process at the same instant about once a minute, loaded or idle
 * (bench/README.md, session 11): a write in flight then takes that much longer, which a p99 over a few
 * thousand writes shows.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface Pauses {
  count: number;
  maxMs: number;
}

export interface PauseProbe {
  /** The pauses that began between two wall-clock times (ms since the epoch). */
  between(fromMs: number, toMs: number): Pauses;
  stop(): void;
}

const PROBE = (thresholdMs: number) => `
let last = performance.now();
setInterval(() => {
  const now = performance.now();
  if (now - last > ${thresholdMs}) process.stdout.write((performance.timeOrigin + last).toFixed(1) + ' ' + (now - last - 2).toFixed(1) + '\\n');
  last = now;
}, 2);
process.stdin.on('end', () => process.exit(0)).resume();
`;

export async function startPauseProbe(thresholdMs = 10): Promise<PauseProbe> {
  // stdin is a pipe: when this process ends, however it ends, the probe's stdin closes and it exits.
  const child: ChildProcess = spawn(process.execPath, ['-e', PROBE(thresholdMs)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const seen: [number, number][] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    const [at, ms] = line.split(' ').map(Number);
    seen.push([at, ms]);
  });
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject));
  return {
    between(fromMs, toMs) {
      const inRange = seen.filter(([at]) => at >= fromMs && at <= toMs);
      return { count: inRange.length, maxMs: inRange.reduce((m, [, ms]) => Math.max(m, ms), 0) };
    },
    stop() {
      child.stdin?.end();
      child.kill();
    },
  };
}
