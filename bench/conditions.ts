/**
 * The conditions a benchmark ran under, printed with its figures so that runs on different days or
 * machines can be compared: Node, cores, load average, and a CPU calibration (a fixed loop whose time
 * on an unloaded modern x86 core is around 100 ms; a shared or throttled machine shows higher values).
 */
import { cpus, loadavg } from 'node:os';

/** Milliseconds for 10^8 additions in a plain loop (median of three). */
export function cpuCalibrationMs(): number {
  const times: number[] = [];
  for (let run = 0; run < 3; run++) {
    const t = performance.now();
    let s = 0;
    for (let i = 0; i < 1e8; i++) s += i;
    if (s < 0) console.log(s); // keeps the loop from being optimised away
    times.push(performance.now() - t);
  }
  return times.sort((a, b) => a - b)[1];
}

export function describeConditions(): string {
  const [one, five] = loadavg();
  return `node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${one.toFixed(1)} (1 min) ${five.toFixed(1)} (5 min), ` +
    `CPU calibration ${cpuCalibrationMs().toFixed(0)} ms (10^8-step loop; ~100 ms on an unloaded modern core)`;
}
