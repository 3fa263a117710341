/**
 * A minimal HTTP/1.1 keep-alive client for the benchmark's measured writes: `connections` sockets, one
 * request in flight on each, and of each answer only the status line, Location and Content-Length read
 * (the body is skipped). The load generator shares the server's two CPUs, so what it spends is taken
 * from the server. Against a loopback server giving a fixed 201, undici's `Pool.request` (`--client
 * undici`, what sent the writes before session 16) cost ~35 µs of this process's CPU per request, and
 * this ~18 µs; in bench/notify rows the load process's CPU per write fell from 0.10–0.14 ms to
 * 0.08–0.12 (2026-12-08, four alternated runs).
 *
 * It only understands what Clarion answers a create with (a Content-Length body, no chunking, no
 * 1xx); anything else fails the write loudly. Not for anything but this benchmark.
 */
import { connect, type Socket } from 'node:net';

export interface RawAnswer {
  status: number;
  location: string;
}

interface Connection {
  socket: Socket;
  /** Bytes of the answer in progress (latin1: header bytes map one-to-one). */
  buffer: string;
  waiting?: { resolve: (a: RawAnswer) => void; reject: (e: Error) => void };
  closed?: Error;
}

export class RawHttpClient {
  private readonly idle: Connection[] = [];
  private readonly queue: ((c: Connection) => void)[] = [];
  private readonly all: Connection[] = [];

  private constructor(private readonly host: string) {}

  /** Opens `connections` sockets to `origin` (http://host:port). */
  static async open(origin: string, connections: number): Promise<RawHttpClient> {
    const url = new URL(origin);
    const client = new RawHttpClient(url.host);
    await Promise.all(Array.from({ length: connections }, () => client.connectOne(url.hostname, Number(url.port))));
    return client;
  }

  private connectOne(hostname: string, port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host: hostname, port, noDelay: true }, () => {
        socket.off('error', reject);
        const c: Connection = { socket, buffer: '' };
        socket.on('data', (d: Buffer) => this.onData(c, d));
        const fail = (e: Error) => {
          c.closed = e;
          c.waiting?.reject(e);
          c.waiting = undefined;
        };
        socket.on('error', fail);
        socket.on('close', () => fail(new Error('connection closed by the server')));
        this.all.push(c);
        this.release(c);
        resolve();
      });
      socket.once('error', reject);
    });
  }

  /** The bytes of a POST of `body` (JSON) to `path`, built once and sent as often as wanted. */
  preparePost(path: string, body: Buffer): Buffer {
    const head = `POST ${path} HTTP/1.1\r\nHost: ${this.host}\r\nContent-Type: application/fhir+json\r\nContent-Length: ${body.length}\r\n\r\n`;
    return Buffer.concat([Buffer.from(head, 'latin1'), body]);
  }

  /** Sends a prepared request on a free connection; resolves with the answer's status and Location. */
  async send(request: Buffer): Promise<RawAnswer> {
    const c = await this.take();
    return new Promise<RawAnswer>((resolve, reject) => {
      c.waiting = {
        resolve: (a) => {
          this.release(c);
          resolve(a);
        },
        reject,
      };
      c.socket.write(request);
    });
  }

  close(): void {
    for (const c of this.all) c.socket.destroy();
  }

  private take(): Promise<Connection> {
    const c = this.idle.pop();
    if (c) return c.closed ? Promise.reject(c.closed) : Promise.resolve(c);
    return new Promise((resolve) => this.queue.push(resolve));
  }

  private release(c: Connection): void {
    const next = this.queue.shift();
    if (next) next(c);
    else this.idle.push(c);
  }

  private onData(c: Connection, d: Buffer): void {
    c.buffer += d.toString('latin1');
    const end = c.buffer.indexOf('\r\n\r\n');
    if (end < 0) return;
    const head = c.buffer.slice(0, end);
    if (/\r\ntransfer-encoding:/i.test(head)) return this.broken(c, `a chunked answer: ${head.split('\r\n')[0]}`);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (c.buffer.length < end + 4 + length) return;
    if (c.buffer.length > end + 4 + length) return this.broken(c, 'bytes after the answer (one request is in flight per connection)');
    c.buffer = '';
    const status = Number(head.slice(9, 12));
    const location = /\r\nlocation: *([^\r]*)/i.exec(head)?.[1] ?? '';
    const w = c.waiting;
    c.waiting = undefined;
    w?.resolve({ status, location });
  }

  private broken(c: Connection, why: string): void {
    const e = new Error(`raw HTTP client: ${why}`);
    c.closed = e;
    c.waiting?.reject(e);
    c.waiting = undefined;
    c.socket.destroy();
  }
}
