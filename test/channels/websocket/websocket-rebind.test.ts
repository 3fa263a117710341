/**
 * Re-binding on the same connection. When a binding's token expires the binding is suspended (its
 * cursor kept, the client warned); events written meanwhile are numbered and kept, not sent, and a
 * `bind-with-token` with a fresh token on the same connection sends them in order before live ones. A
 * renewal before expiry while events are being written neither loses nor repeats one, and from then
 * on the binding lives as long as the fresh token.
 *
 * The server runs on a clock the test moves forward, so a token expires at a chosen point (the hub's
 * one-second tick notices it) rather than after a real lifetime a slow machine may overrun.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/store/db.js';
import { startE2E, type E2E } from '../../support/subscription-e2e.js';
import { admit, bindNew, collectEvents, createWsSubscription, getToken, range, WsClient } from './ws-support.js';

/** The system clock plus an offset the test moves forward. */
class MovableClock implements Clock {
  private offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(seconds: number): void {
    this.offsetMs += seconds * 1000;
  }
}

const TOKEN_LIFETIME_S = 300;
const clock = new MovableClock();
let e2e: E2E;
let n = 0;
const newPatient = () => `Patient/ws-rebind-${++n}`;

beforeAll(async () => {
  e2e = await startE2E({ wsTokenLifetime: TOKEN_LIFETIME_S }, { clock });
});
afterAll(async () => {
  await e2e?.close();
});


/**
 * Every frame the server sent before this call has arrived: the hub has no fan-out running, and the
 * answer to a ping (sent on the same socket after anything queued before it) is here.
 */
async function drained(ws: WsClient): Promise<void> {
  await e2e.clarion.subscriptions.eventsIdle();
  await e2e.clarion.subscriptions.websocket.idle();
  ws.send('ping');
  await ws.next((f) => f.json?.type === 'pong', 'the pong');
}


describe('re-binding with a fresh token on the same connection', () => {
  it('after expiry: events written while suspended, then during the re-bind, arrive once each, in order', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const { ws } = await bindNew(e2e.fhir, id);
    await admit(e2e.fhir, patient);
    expect(await collectEvents(ws, id, 1)).toEqual([1]);

    clock.advance(TOKEN_LIFETIME_S + 1);
    const expired = await ws.outcome('CLARION_WS_TOKEN_EXPIRED');
    expect(expired).toMatchObject({ severity: 'warning', diagnostics: expect.stringContaining(`Subscription/${id}`) });

    // Suspended: these are numbered and kept, but nothing is sent.
    for (let i = 0; i < 3; i++) await admit(e2e.fhir, patient);
    await drained(ws);
    expect(ws.takeEvents(id)).toEqual([]);

    // Re-bind with a fresh token while more events are being written.
    const fresh = await getToken(e2e.fhir, id);
    const live = (async () => {
      for (let i = 0; i < 3; i++) await admit(e2e.fhir, patient);
    })();
    ws.send(`bind-with-token ${fresh.token}`);
    const handshake = await ws.notification('handshake', id);
    expect(Number(handshake.eventsSince)).toBeGreaterThanOrEqual(4);
    await live;
    expect(await collectEvents(ws, id, 6)).toEqual(range(2, 7));

    await admit(e2e.fhir, patient);
    expect(await collectEvents(ws, id, 1)).toEqual([8]);
    await drained(ws);
    expect(ws.takeEvents(id)).toEqual([]); // exactly once
    ws.close();
  });

  it('before expiry: a renewal while events are written loses and repeats nothing, and the fresh token then governs', async () => {
    const patient = newPatient();
    // Heartbeats are due only after the clock is moved: each one proves a tick found the binding active.
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`], heartbeatPeriod: 100 });
    const first = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(first.url);
    ws.send(`bind-with-token ${first.token}`);
    await ws.notification('handshake', id);

    clock.advance(200); // the first token has 100 s left
    await ws.notification('heartbeat', id);

    const fresh = await getToken(e2e.fhir, id);
    expect(Date.parse(fresh.expiration)).toBeGreaterThan(Date.parse(first.expiration));
    const live = (async () => {
      for (let i = 0; i < 6; i++) await admit(e2e.fhir, patient);
    })();
    ws.send(`bind-with-token ${fresh.token}`);
    await ws.notification('handshake', id); // a renewal sends a handshake too; the position is kept
    await live;
    expect(await collectEvents(ws, id, 6)).toEqual(range(1, 6));

    // Past the first token's expiry, within the fresh one's: still bound (a heartbeat, no warning).
    clock.advance(150);
    await ws.notification('heartbeat', id);
    await admit(e2e.fhir, patient);
    expect(await collectEvents(ws, id, 1)).toEqual([7]);
    await drained(ws);
    expect(ws.frames.filter((f) => f.json?.resourceType === 'OperationOutcome').map((f) => f.text)).toEqual([]);
    expect(ws.takeEvents(id)).toEqual([]);
    ws.close();
  });
});
