/**
 * `clarion serve --pipeline separate` beside a `clarion worker` on one PostgreSQL: the server answers
 * requests and serves sockets, the worker numbers events and delivers them. A rest-hook subscriber gets
 * its handshake and every event, in order; a websocket client bound on the server gets the events the
 * worker numbered. With PGlite the mode is refused (nothing could share the database).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { Subscription } from 'fhir/r4.js';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { openDb } from '../../src/store/open-db.js';
import { admit, createWsSubscription, getToken, WsClient } from '../channels/websocket/ws-support.js';
import { fhirClient } from '../support/server.js';
import { startReceiver } from '../support/receiver.js';
import { startServerProcess } from '../support/server-process.js';
import { ADMISSION, restHookSubscription, serverStorageArgs, statusOf, waitForSubscription } from '../support/subscription-e2e.js';
import { dropStorage, freshStorageConfig, TEST_BACKEND } from '../support/test-db.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
});

describe('a separate pipeline process', () => {
  it.runIf(TEST_BACKEND === 'pg')('delivers what the server took, over rest-hook and websocket', async () => {
    const config = freshStorageConfig();
    if (config.kind !== 'pg') return;
    await (await openDb(config)).close();
    cleanups.push(() => dropStorage(config));
    const args = [...serverStorageArgs(config), '--endpoint-allow', '127.0.0.1/32', '--allow-http', '--handshake-delay', '0'];
    const server = await startServerProcess([...args, '--pipeline', 'separate']);
    cleanups.push(() => server.stop());
    const worker = await startServerProcess([...args, '--base-url', server.baseUrl], {}, 'worker');
    cleanups.push(() => worker.stop());
    const receiver = await startReceiver();
    cleanups.push(() => receiver.close());
    const fhir = fhirClient(server.baseUrl);

    // rest-hook: the worker sends the handshake and the events, numbered in order.
    const created = await fhir<Subscription>('Subscription', { method: 'POST', body: restHookSubscription({ topic: ADMISSION, endpoint: receiver.url, filters: ['patient=Patient/separate'] }) });
    expect(created.status).toBe(201);
    expect(created.body.status).toBe('requested');
    expect(statusOf((await receiver.until(1))[0]).type).toBe('handshake');
    // Events count from activation, which the worker records after the handshake.
    await waitForSubscription(fhir, created.body.id!, (sub) => sub.status === 'active');
    for (let i = 0; i < 5; i++) await admit(fhir, 'Patient/separate');
    const received = await receiver.until(6);
    expect(received.slice(1).flatMap((r) => statusOf(r).events.map((e) => e.eventNumber))).toEqual(['1', '2', '3', '4', '5']);
    // Links name the server's base (the worker was given it).
    expect(statusOf(received[1]).events[0].focus).toMatch(new RegExp(`^${server.baseUrl}/Encounter/`));

    // websocket: bound on the server, events numbered by the worker.
    const id = await createWsSubscription(fhir, { filters: ['Encounter?patient=Patient/separate-ws'] });
    const t = await getToken(fhir, id);
    const ws = await WsClient.connect(t.url);
    cleanups.push(() => ws.close());
    ws.send(`bind-with-token ${t.token}`);
    await ws.notification('handshake', id);
    await admit(fhir, 'Patient/separate-ws');
    const ev = await ws.notification('event-notification', id);
    expect(ev.events.map((e) => e.eventNumber)).toEqual(['1']);
  });

  it('clarion worker refuses to start without PostgreSQL, saying why', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', 'worker', '--memory'], { cwd: ROOT, encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('clarion worker needs PostgreSQL (--database-url)');
  });

  it('is refused with the embedded PGlite database', () => {
    expect(() => loadConfig({ memory: true, pipeline: 'separate' }, {})).toThrow(ConfigError);
    expect(() => loadConfig({ memory: true, pipeline: 'separate' }, {})).toThrow(/--pipeline separate needs PostgreSQL/);
    expect(() => loadConfig({ pipeline: 'elsewhere' }, {})).toThrow(/pipeline must be one of in-process, separate/);
  });
});
