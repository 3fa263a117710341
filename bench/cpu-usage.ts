/**
 * CPU time spent per process during a benchmark phase, read from /proc (Linux; elsewhere every figure
 * is NaN). Latency on a loaded 2-core machine varies by ±15% between runs; CPU time per write varies far
 * less, so it is what shows whether a change made the path cheaper.
 */
import { readdirSync, readFileSync } from 'node:fs';

const TICKS_PER_SECOND = 100; // USER_HZ on Linux

/** utime + stime of a process in ms, or undefined if it is gone (or not Linux). */
function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

function pidsNamed(name: string): number[] {
  try {
    return readdirSync('/proc')
      .filter((p) => /^\d+$/.test(p))
      .filter((p) => {
        try {
          return readFileSync(`/proc/${p}/comm`, 'utf8').trim() === name;
        } catch {
          return false;
        }
      })
      .map(Number);
  } catch {
    return [];
  }
}

export interface CpuSnapshot {
  at: Map<number, number>;
  pids: () => number[];
}

/** CPU ms of `pids()` now (re-evaluated at the end too, so processes started meanwhile count from 0). */
export function cpuSnapshot(pids: () => number[]): CpuSnapshot {
  const at = new Map<number, number>();
  for (const pid of pids()) {
    const ms = processCpuMs(pid);
    if (ms !== undefined) at.set(pid, ms);
  }
  return { at, pids };
}

/** CPU ms used since `start` by its processes (those that exited meanwhile are not counted). */
export function cpuSince(start: CpuSnapshot): number {
  if (process.platform !== 'linux') return NaN;
  let total = 0;
  for (const pid of start.pids()) {
    const ms = processCpuMs(pid);
    if (ms !== undefined) total += ms - (start.at.get(pid) ?? 0);
  }
  return total;
}

/** The PostgreSQL server's processes on this machine (the benchmark's database is local). */
export const postgresPids = (): number[] => pidsNamed('postgres');
