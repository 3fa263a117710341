/**
 * The conditions a benchmark ran under, printed with its figures so that runs on different days or
 * machines can be compared: Node, cores, load average, a CPU calibration (a fixed loop whose time on an
 * unloaded modern x86 core is around 100 ms) and a loopback calibration (TCP round trips on 127.0.0.1,
 * which is what a server, its database and its HTTP peers mostly do: tens of microseconds on an idle
 * machine; a virtual machine with costly system calls or wake-ups shows much more).
 */
import { createServer, connect, type AddressInfo } from 'node:net';
import { cpus, loadavg } from 'node:os';
import pg from 'pg';

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

/** Median microseconds of one 1-byte ping-pong over a TCP connection on 127.0.0.1 (2,000 of them). */
export async function loopbackRoundTripUs(count = 2000): Promise<number> {
  const server = createServer((s) => s.on('data', (d) => s.write(d)));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
  socket.setNoDelay(true);
  await new Promise<void>((r) => socket.once('connect', r));
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await new Promise<void>((r) => {
      socket.once('data', () => r());
      socket.write('x');
    });
    times.push((performance.now() - t) * 1000);
  }
  socket.destroy();
  await new Promise<void>((r) => server.close(() => r()));
  return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
}

/** Median microseconds of `SELECT 1` on PostgreSQL (a round trip to another process: wake-up costs show here). */
export async function databaseRoundTripUs(databaseUrl: string, count = 1000): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const times: number[] = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      await client.query('SELECT 1');
      times.push((performance.now() - t) * 1000);
    }
    return times.sort((a, b) => a - b)[Math.floor(times.length / 2)];
  } finally {
    await client.end();
  }
}

export async function describeConditions(databaseUrl?: string): Promise<string> {
  const [one, five] = loadavg();
  const db = databaseUrl ? await databaseRoundTripUs(databaseUrl).then((us) => `${us.toFixed(0)} µs`, () => 'n/a') : undefined;
  return `node ${process.version}, ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), load average ${one.toFixed(1)} (1 min) ${five.toFixed(1)} (5 min), ` +
    `CPU calibration ${cpuCalibrationMs().toFixed(0)} ms (10^8-step loop; ~100 ms on an unloaded modern core), ` +
    `loopback round trip ${(await loopbackRoundTripUs()).toFixed(0)} µs (median TCP ping-pong on 127.0.0.1, one process)` +
    (db ? `, PostgreSQL round trip ${db} (median SELECT 1; ~50–100 µs on an idle machine)` : '');
}
