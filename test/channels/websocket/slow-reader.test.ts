/**
 * A client that does not read: the server must not buffer for it without bound. FrameWriter drops a
 * connection once more than its limit is queued in the socket (8 MiB in the server; a small limit
 * here), over a real websocket on 127.0.0.1 whose client has stopped reading.
 */
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { FrameWriter, newConnection } from '../../../src/channels/websocket/websocket-connection.js';

const cleanup: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

/** A server-side socket and its client, connected over loopback. */
async function pair(): Promise<{ server: WebSocket; client: WebSocket }> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  cleanup.push(() => new Promise<void>((r) => wss.close(() => r())));
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const accepted = new Promise<WebSocket>((r) => wss.once('connection', (s) => r(s)));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  cleanup.push(() => client.terminate());
  await new Promise<void>((r, j) => (client.once('open', () => r()), client.once('error', j)));
  return { server: await accepted, client };
}

describe('a websocket client that stops reading', () => {
  it('is dropped once more than the limit is queued for it; a reading client is not', async () => {
    const limit = 256 * 1024;
    const writer = new FrameWriter(limit);
    const slow = await pair();
    const reading = await pair();
    let received = 0;
    reading.client.on('message', () => received++);
    (slow.client as unknown as { _socket: { pause(): void } })._socket.pause(); // stops reading; the kernel buffers fill
    const frame = Buffer.alloc(16 * 1024, 'x').toString();
    const closed = new Promise<void>((r) => slow.server.once('close', () => r()));
    const slowConn = newConnection(slow.server, 'test', 0);
    const readingConn = newConnection(reading.server, 'test', 0);
    let sent = 0;
    // Until the server gives up on it (bounded: 64 MiB would be far beyond any loopback buffer).
    while (slow.server.readyState === WebSocket.OPEN && sent < 4096) {
      writer.send(slowConn, frame);
      writer.send(readingConn, 'ping-sized frame');
      sent++;
      if (sent % 64 === 0) await new Promise((r) => setImmediate(r)); // let the reading client read
    }
    expect(sent).toBeLessThan(4096); // the server gave up on it
    await closed;
    expect(slow.server.readyState).toBe(WebSocket.CLOSED);
    // What was sent before the drop went out; the reading client is still connected and gets more.
    writer.send(readingConn, 'after');
    const last = new Promise<string>((r) => reading.client.on('message', (d: Buffer) => d.toString() === 'after' && r('after')));
    expect(await last).toBe('after');
    expect(received).toBeGreaterThan(0);
    expect(reading.server.readyState).toBe(WebSocket.OPEN);
  });
});
