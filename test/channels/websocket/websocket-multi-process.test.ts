/**
 * Two server processes on one PostgreSQL database: a token issued by process A binds on process B, and
 * a socket bound on B receives the event of a write made on A (the fan-out is woken across processes by
 * the `clarion_deliveries` NOTIFY, and reads the shared event log). PGlite is one process: skipped there.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { openDb } from '../../../src/store/open-db.js';
import { startServerProcess, type ServerProcess } from '../../support/server-process.js';
import { fhirClient } from '../../support/server.js';
import { serverStorageArgs } from '../../support/subscription-e2e.js';
import { dropStorage, freshStorageConfig, TEST_BACKEND } from '../../support/test-db.js';
import { createWsSubscription, encounter, getToken, WsClient } from './ws-support.js';

const cleanups: (() => Promise<unknown> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('websocket across server processes', () => {
  it.runIf(TEST_BACKEND === 'pg')('a socket bound on process B receives an event written on process A', async () => {
    const config = freshStorageConfig();
    if (config.kind !== 'pg') throw new Error('pg only');
    await (await openDb(config)).close(); // migrate once, before two processes start
    cleanups.push(() => dropStorage(config));
    const start = async (): Promise<ServerProcess> => {
      const p = await startServerProcess(serverStorageArgs(config));
      cleanups.push(() => p.stop());
      return p;
    };
    const [a, b] = await Promise.all([start(), start()]);
    const fhirA = fhirClient(a.baseUrl);
    const fhirB = fhirClient(b.baseUrl);

    const id = await createWsSubscription(fhirA, { filters: ['Encounter?patient=Patient/multi'] });
    const token = await getToken(fhirA, id); // issued by A …
    const urlB = (await getToken(fhirB, id)).url;
    expect(urlB).not.toBe(token.url);
    const ws = await WsClient.connect(urlB); // … bound on B
    ws.send(`bind-with-token ${token.token}`);
    await ws.notification('handshake', id);

    const res = await fhirA('Encounter', { method: 'POST', body: encounter('Patient/multi') });
    expect(res.status).toBe(201);
    const ev = await ws.notification('event-notification', id);
    // References use the base URL of the process that sent the notification (in production all share --base-url).
    expect(ev.events).toEqual([{ eventNumber: '1', focus: `${b.baseUrl}/Encounter/${res.body.id}` }]);

    // And the other way round, on the same connection: a second write on A, then one on B.
    await fhirA('Encounter', { method: 'POST', body: encounter('Patient/multi') });
    await fhirB('Encounter', { method: 'POST', body: encounter('Patient/multi') });
    const seen: number[] = [];
    while (seen.length < 2) seen.push(...(await ws.notification('event-notification', id)).events.map((e) => Number(e.eventNumber)));
    expect(seen).toEqual([2, 3]);
    ws.close();
  });
});
