/**
 * A real HTTP receiver on 127.0.0.1 (port 0) that records what it is sent and answers with a
 * status the test chooses. Tests wait for deliveries with `next()`/`until()`, never by sleeping.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Status for the next requests (a function sees each request). */
  respondWith(status: number | ((r: Received) => number | Promise<number>)): void;
  /** Resolves when `count` requests in total have arrived. */
  until(count: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(path = '/hook'): Promise<Receiver> {
  const received: Received[] = [];
  let respond: (r: Received) => number | Promise<number> = () => 200;
  let waiters: { count: number; resolve: (r: Received[]) => void }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: Received = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString('utf8'), at: Date.now() };
      void Promise.resolve(respond(r)).then((status) => {
        received.push(r);
        res.statusCode = status;
        res.end();
        waiters = waiters.filter((w) => (received.length >= w.count ? (w.resolve(received.slice()), false) : true));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${path}`,
    received,
    respondWith(s) {
      respond = typeof s === 'number' ? () => s : s;
    },
    until(count) {
      if (received.length >= count) return Promise.resolve(received.slice());
      return new Promise((resolve) => waiters.push({ count, resolve }));
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
