/**
 * Limits and hostile input: oversized frames, too many bindings, idle connections, garbage; the server
 * answers with error frames or closes that one connection, and keeps serving everyone else.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startE2E, type E2E } from '../../support/subscription-e2e.js';
import { admit, bindNew, createWsSubscription, getToken, WsClient } from './ws-support.js';

let e2e: E2E;
let url: string;

beforeAll(async () => {
  e2e = await startE2E({ wsMaxFrame: 1024, wsMaxBindings: 2 });
  url = (await getToken(e2e.fhir, await createWsSubscription(e2e.fhir))).url;
});
afterAll(async () => {
  await e2e?.close();
});

/** The server still binds and answers REST after whatever a test did. */
async function stillServes(): Promise<void> {
  const id = await createWsSubscription(e2e.fhir);
  const { ws } = await bindNew(e2e.fhir, id);
  ws.close();
}

describe('invalid messages', () => {
  it.each([
    ['unknown text', 'hello there'],
    ['bind without token', 'bind-with-token'],
    ['broken JSON', '{"type": "bind-with-token", '],
    ['JSON without type', '{"payload":{}}'],
    ['unknown JSON type', '{"type":"subscribe"}'],
    ['token of the wrong type', '{"type":"bind-with-token","payload":{"token":42}}'],
    ['negative lastEventNumber', '{"type":"bind-with-token","payload":{"token":"abc","lastEventNumber":-1}}'],
    ['a JSON array', '[1,2,3]'],
  ])('%s → CLARION_WS_INVALID_MESSAGE error frame, connection kept', async (_what, message) => {
    const ws = await WsClient.connect(url);
    ws.send(message);
    const o = await ws.outcome();
    expect(o).toMatchObject({ severity: 'error', code: 'CLARION_WS_INVALID_MESSAGE' });
    ws.send('ping');
    await ws.next((f) => f.json?.type === 'pong', 'pong');
    ws.close();
  });

  it('a binary frame is refused with an error frame', async () => {
    const ws = await WsClient.connect(url);
    ws.socket.send(Buffer.from([0, 1, 2, 255]));
    expect((await ws.outcome()).code).toBe('CLARION_WS_INVALID_MESSAGE');
    ws.close();
  });

  it('closes a connection that sends nothing but garbage (1008), and keeps serving others', async () => {
    const ws = await WsClient.connect(url);
    for (let i = 0; i < 25; i++) ws.send(`garbage ${i}`);
    expect((await ws.closedBy()).code).toBe(1008);
    await stillServes();
  });
});

describe('limits', () => {
  it('closes a connection whose message exceeds the frame limit with 1009, and keeps serving others', async () => {
    const ws = await WsClient.connect(url);
    ws.send(`bind-with-token ${'x'.repeat(2000)}`);
    expect((await ws.closedBy()).code).toBe(1009);
    await stillServes();
  });

  it('refuses a bind beyond the bindings limit, binding nothing of it', async () => {
    const [a, b, c] = [await createWsSubscription(e2e.fhir), await createWsSubscription(e2e.fhir), await createWsSubscription(e2e.fhir)];
    const ws = await WsClient.connect(url);
    const tab = await getToken(e2e.fhir, [a, b]);
    ws.send(`bind-with-token ${tab.token}`);
    await ws.notification('handshake', a);
    await ws.notification('handshake', b);
    const tc = await getToken(e2e.fhir, c);
    ws.send(`bind-with-token ${tc.token}`);
    expect((await ws.outcome('CLARION_WS_TOO_MANY_BINDINGS')).diagnostics).toContain('at most 2');
    // Re-binding what is already bound is not a new binding.
    ws.send(`bind-with-token ${tab.token}`);
    await ws.notification('handshake', a);
    ws.send({ type: 'unbind-from-token', payload: { token: tab.token } });
    expect((await ws.outcome()).severity).toBe('information');
    ws.send(`bind-with-token ${tc.token}`);
    await ws.notification('handshake', c);
    ws.close();
  });

  it('closes a connection that binds nothing within the idle timeout (4000)', async () => {
    // A server of its own: a 1 s idle timeout would race with the other tests' unbound connections.
    const idle = await startE2E({ wsIdleTimeout: 1 });
    try {
      const t = await getToken(idle.fhir, await createWsSubscription(idle.fhir));
      const ws = await WsClient.connect(t.url);
      const closed = await ws.closedBy();
      expect(closed.code).toBe(4000);
      expect(closed.reason).toContain('idle');
    } finally {
      await idle.close();
    }
  });

  it('drops a bound peer that stops answering pings; one that answers stays bound and notified', async () => {
    // The idle timeout is also the ping timeout: a bound connection is pinged after it, and dropped if
    // the pong has not come by the next one. A server of its own, for the short timeout.
    const live = await startE2E({ wsIdleTimeout: 1 });
    try {
      const id = await createWsSubscription(live.fhir);
      const token = await getToken(live.fhir, id);
      const silent = await WsClient.connect(token.url, { autoPong: false });
      silent.send(`bind-with-token ${token.token}`);
      await silent.notification('handshake', id);
      const { ws: answering } = await bindNew(live.fhir, id);
      const closed = await silent.closedBy();
      expect(closed.code).toBe(1006); // terminated, no close frame: the peer is presumed gone
      expect(answering.closed).toBeUndefined();
      await admit(live.fhir, 'Patient/123');
      expect((await answering.notification('event-notification', id)).events).toHaveLength(1);
      answering.close();
    } finally {
      await live.close();
    }
  });

  it('a plain GET on the websocket endpoint is 426 with an OperationOutcome', async () => {
    const res = await fetch(url.replace(/^ws/, 'http'));
    expect(res.status).toBe(426);
    expect(((await res.json()) as { resourceType: string }).resourceType).toBe('OperationOutcome');
  });
});
