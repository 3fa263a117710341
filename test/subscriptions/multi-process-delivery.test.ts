/**
 * Several server processes on one PostgreSQL: both run the event writer and the delivery worker.
 * Writes arrive at both; the subscriber gets every event once, in order, with gap-free numbers.
 */
import type { Subscription } from 'fhir/r4.js';
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../src/store/open-db.js';
import { startReceiver } from '../support/receiver.js';
import { startServerProcess, type ServerProcess } from '../support/server-process.js';
import { ADMISSION, restHookSubscription, serverStorageArgs, statusOf } from '../support/subscription-e2e.js';
import { dropStorage, freshStorageConfig, TEST_BACKEND } from '../support/test-db.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('several processes', () => {
  it.runIf(TEST_BACKEND === 'pg')('deliver each event once, in order, whichever process took the write', async () => {
    const config = freshStorageConfig();
    if (config.kind !== 'pg') return;
    await (await openDb(config)).close();
    cleanups.push(() => dropStorage(config));
    const args = [...serverStorageArgs(config), '--endpoint-allow', '127.0.0.1/32', '--allow-http', '--handshake-delay', '0'];
    const servers: ServerProcess[] = [await startServerProcess(args), await startServerProcess(args)];
    for (const s of servers) cleanups.push(() => s.stop());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const post = (base: string, path: string, body: unknown) =>
      fetch(`${base}/${path}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(body) });

    const res = await post(servers[0].baseUrl, 'Subscription', restHookSubscription({ topic: ADMISSION, endpoint: receiver.url, filters: ['patient=Patient/multi'] }));
    expect(res.status).toBe(201);
    const sub = (await res.json()) as Subscription;
    await receiver.until(1);
    // Wait until the other process also sees the subscription as active (its event writer catches up).
    for (;;) {
      const s = (await fetch(`${servers[1].baseUrl}/Subscription/${sub.id}`).then((r) => r.json())) as Subscription;
      if (s.status === 'active') break;
      await new Promise((r) => setTimeout(r, 20));
    }

    const N = 40;
    const encounter = { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP', system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode' }, subject: { reference: 'Patient/multi' } };
    await Promise.all(
      Array.from({ length: N }, async (_, i) => {
        const r = await post(servers[i % 2].baseUrl, 'Encounter', encounter);
        expect(r.status).toBe(201);
      }),
    );
    const received = await receiver.until(1 + N);
    const numbers = received.slice(1).flatMap((r) => statusOf(r).events.map((e) => Number(e.eventNumber)));
    expect(numbers).toEqual(Array.from({ length: N }, (_, i) => i + 1));
  });
});
