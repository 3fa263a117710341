/**
 * SIGKILL during delivery: the server process dies while events are being numbered and delivered;
 * after a restart every event is delivered, in order, with its original number (a notification in flight
 * at the kill may arrive twice — at-least-once — and clients de-duplicate on event-number).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Subscription } from 'fhir/r4.js';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/open-db.js';
import { startReceiver } from '../support/receiver.js';
import { startServerProcess } from '../support/server-process.js';
import { ADMISSION, restHookSubscription, statusOf, serverStorageArgs } from '../support/subscription-e2e.js';
import { dropStorage, freshStorageConfig, TEST_BACKEND } from '../support/test-db.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

const SERVER_ARGS = ['--endpoint-allow', '127.0.0.1/32', '--allow-http', '--handshake-delay', '0', '--retry-initial-delay', '50', '--retry-max-delay', '200'];

describe('crash during delivery', () => {
  it(`delivers every event in order with unchanged numbers after SIGKILL and restart (${TEST_BACKEND})`, { timeout: 180_000 }, async () => {
    let config = freshStorageConfig();
    if (config.kind === 'pglite') {
      const dir = mkdtempSync(join(tmpdir(), 'clarion-delivery-crash-'));
      cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
      config = { kind: 'pglite', dataDir: dir };
    } else {
      await (await openDb(config)).close();
      cleanups.push(() => dropStorage(config));
    }
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const args = [...serverStorageArgs(config), ...SERVER_ARGS];

    let server = await startServerProcess(args);
    const post = (base: string, path: string, body: unknown) =>
      fetch(`${base}/${path}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });
    // A 3 s attempt timeout keeps the dead worker's lease short (timeout + 2 s).
    const res = await post(server.baseUrl, 'Subscription', restHookSubscription({ topic: ADMISSION, endpoint: receiver.url, filters: ['patient=Patient/crash'], timeout: 3 }));
    expect(res.status).toBe(201);
    const sub = (await res.json()) as Subscription;
    await receiver.until(1); // handshake
    // Writes count from the moment the subscription is active (just after the handshake's 2xx).
    for (;;) {
      const s = (await fetch(`${server.baseUrl}/Subscription/${sub.id}`).then((r) => r.json())) as Subscription;
      if (s.status === 'active') break;
      await new Promise((r) => setTimeout(r, 20));
    }

    const N = 60;
    let written = 0;
    const encounter = { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP', system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode' }, subject: { reference: 'Patient/crash' } };
    // Write until the receiver has seen some events, then kill the server mid-stream.
    const writer = (async () => {
      while (written < N) {
        try {
          const r = await post(server.baseUrl, 'Encounter', encounter);
          if (r.status !== 201) throw new Error(`status ${r.status}`);
          written++;
        } catch {
          return; // killed
        }
      }
    })();
    await receiver.until(1 + 10);
    server.proc.kill('SIGKILL');
    await server.exited;
    await writer;

    server = await startServerProcess(args);
    cleanups.push(() => server.stop());
    while (written < N) {
      const r = await post(server.baseUrl, 'Encounter', encounter);
      expect(r.status).toBe(201);
      written++;
    }
    // A write in flight at the kill may have committed without its answer: the server's count is the
    // truth, and it is at least every acknowledged write.
    // The event writer numbers events asynchronously: wait until it has counted every acknowledged write.
    const eventsSince = async () => Number(statusOf((await fetch(`${server.baseUrl}/Subscription/${sub.id}/$status`).then((r) => r.json())) as never).eventsSince);
    let total = await eventsSince();
    const deadline = Date.now() + 60_000;
    while (total < N) {
      if (Date.now() > deadline) throw new Error(`only ${total} of ${N} acknowledged writes were numbered`);
      await new Promise((r) => setTimeout(r, 20));
      total = await eventsSince();
    }
    expect(total).toBeLessThanOrEqual(N + 1);
    const seen = () => receiver.received.flatMap((r) => statusOf(r).events.map((e) => Number(e.eventNumber)));
    while (!seen().includes(total)) {
      const more = await Promise.race([receiver.until(receiver.received.length + 1), new Promise<null>((r) => setTimeout(() => r(null), 30_000))]);
      if (!more) throw new Error(`event ${total} never arrived; seen: ${JSON.stringify(seen())}`);
      total = Math.max(total, ...seen());
    }

    const numbers = seen();
    // Every event, once at least, and nothing beyond the count.
    expect([...new Set(numbers)].sort((a, b) => a - b)).toEqual(Array.from({ length: total }, (_, i) => i + 1));
    // In order: first deliveries are increasing. Repeats are allowed (at-least-once: the notification in
    // flight at the kill, or an attempt that timed out on a loaded machine although it arrived).
    const firstSeen = numbers.filter((n, i) => numbers.indexOf(n) === i);
    expect(firstSeen).toEqual([...firstSeen].sort((a, b) => a - b));
  });
});
