import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EndpointGuard } from '../../src/channels/endpoint-guard.js';
import { parseChannelHeader } from '../../src/channels/http-headers.js';
import { RestHookChannel } from '../../src/channels/rest-hook-channel.js';
import { startReceiver, type Receiver } from '../support/receiver.js';

let receiver: Receiver;
const local = new RestHookChannel({ guard: new EndpointGuard({ allow: ['127.0.0.1/32'], allowHttp: true }) });
const strict = new RestHookChannel({ guard: new EndpointGuard({ allow: [], allowHttp: true }) });
const note = { type: 'event-notification' as const, body: '{"resourceType":"Bundle"}', contentType: 'application/fhir+json' };

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await local.close();
  await strict.close();
  await receiver.close();
});

describe('rest-hook channel', () => {
  it('POSTs the body with the payload content type and every channel.header', async () => {
    receiver.respondWith(200);
    const res = await local.deliver({ subscriptionId: 's1', endpoint: receiver.url, headers: ['Authorization: Bearer abc', 'X-Custom=v1'], timeoutMs: 5000 }, note);
    expect(res).toEqual({ ok: true, status: 200 });
    const [r] = await receiver.until(1);
    expect(r.method).toBe('POST');
    expect(r.headers['content-type']).toBe('application/fhir+json');
    expect(r.headers.authorization).toBe('Bearer abc');
    expect(r.headers['x-custom']).toBe('v1');
    expect(r.body).toBe(note.body);
  });

  it('reports a non-2xx answer as error-response with the status', async () => {
    receiver.respondWith(503);
    const res = await local.deliver({ subscriptionId: 's1', endpoint: receiver.url, headers: [], timeoutMs: 5000 }, note);
    expect(res).toMatchObject({ ok: false, code: 'error-response', httpStatus: 503 });
  });

  it('does not follow redirects (a 3xx is an error-response)', async () => {
    receiver.respondWith(307);
    const res = await local.deliver({ subscriptionId: 's1', endpoint: receiver.url, headers: [], timeoutMs: 5000 }, note);
    expect(res).toMatchObject({ ok: false, code: 'error-response', httpStatus: 307 });
  });

  it('bounds an attempt by the timeout: no-response', async () => {
    let release!: () => void;
    const gate = new Promise<number>((r) => (release = () => r(200)));
    receiver.respondWith(() => gate);
    const res = await local.deliver({ subscriptionId: 's1', endpoint: receiver.url, headers: [], timeoutMs: 200 }, note);
    release();
    expect(res).toMatchObject({ ok: false, code: 'no-response' });
  });

  it('counts a 2xx as delivered and stops reading a body that never ends at the attempt\'s bound', async () => {
    // Headers at once, then a byte every 50 ms, forever: undici's per-read timeouts (200 ms) never
    // fire, so only the attempt's own timer ends the read (without it this test would hang).
    const trickle = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      const t = setInterval(() => res.write('.'), 50);
      res.on('close', () => clearInterval(t));
    });
    await new Promise<void>((r) => trickle.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(trickle.address() as AddressInfo).port}/hook`;
      const res = await local.deliver({ subscriptionId: 's1', endpoint: url, headers: [], timeoutMs: 200 }, note);
      expect(res).toEqual({ ok: true, status: 200 });
    } finally {
      trickle.closeAllConnections();
      await new Promise((r) => trickle.close(r));
    }
  });

  it('reports a closed port as no-response', async () => {
    const res = await local.deliver({ subscriptionId: 's1', endpoint: 'http://127.0.0.1:1/hook', headers: [], timeoutMs: 2000 }, note);
    expect(res).toMatchObject({ ok: false, code: 'no-response' });
  });

  it('refuses loopback endpoints unless allow-listed, by IP literal and by name', async () => {
    expect(await strict.deliver({ subscriptionId: 's1', endpoint: receiver.url, headers: [], timeoutMs: 2000 }, note)).toMatchObject({ ok: false, code: 'endpoint-refused' });
    const byName = receiver.url.replace('127.0.0.1', 'localhost');
    expect(await strict.deliver({ subscriptionId: 's1', endpoint: byName, headers: [], timeoutMs: 2000 }, note)).toMatchObject({ ok: false, code: 'endpoint-refused' });
  });

  it('reports an unresolvable host as dns-resolution-error', async () => {
    const res = await strict.deliver({ subscriptionId: 's1', endpoint: 'http://no-such-host.invalid/hook', headers: [], timeoutMs: 3000 }, note);
    expect(res).toMatchObject({ ok: false, code: 'dns-resolution-error' });
  });

  it('parses channel.header strings and refuses unsafe ones', () => {
    expect(parseChannelHeader('Authorization: Bearer x:y')).toEqual({ name: 'Authorization', value: 'Bearer x:y' });
    expect(parseChannelHeader('X-A=b')).toEqual({ name: 'X-A', value: 'b' });
    expect(parseChannelHeader('no separator')).toHaveProperty('error');
    expect(parseChannelHeader('Host: evil.example')).toHaveProperty('error');
    expect(parseChannelHeader('Bad Name: x')).toHaveProperty('error');
  });
});
