/**
 * The `websocket-url` of `$get-ws-binding-token`: ws:// or wss:// as the client reaches the server.
 * With a configured public base (`--base-url`, e.g. behind a TLS-terminating proxy) that base is
 * advertised, https → wss; without one, the scheme and Host of the token request. Forwarded headers
 * (X-Forwarded-Proto/Host) are not trusted: any client could set them.
 */
import type { AddressInfo } from 'node:net';
import type { Parameters } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { websocketUrl } from '../../../src/server/websocket-server.js';
import { fhirClient } from '../../support/server.js';
import { startE2E, type E2E } from '../../support/subscription-e2e.js';
import { admit, createWsSubscription, getToken, tokenOf, WsClient } from './ws-support.js';

const PUBLIC_BASE = 'https://fhir.example.org/fhir';

let behindProxy: E2E;
let direct: E2E;

beforeAll(async () => {
  [behindProxy, direct] = await Promise.all([startE2E({ baseUrl: PUBLIC_BASE }), startE2E()]);
});
afterAll(async () => {
  await Promise.all([behindProxy?.close(), direct?.close()]);
});

/** Where the server really listens (what a TLS-terminating proxy forwards to). */
function listening(e2e: E2E): string {
  const { port } = e2e.clarion.app.server.address() as AddressInfo;
  return `http://127.0.0.1:${port}/fhir`;
}

describe('websocket-url with a configured https base (behind a TLS proxy)', () => {
  it('advertises wss:// on the public base, whatever scheme, Host or X-Forwarded-* the request had', async () => {
    expect(behindProxy.baseUrl).toBe(PUBLIC_BASE); // the test server reports the configured base
    const fhir = fhirClient(listening(behindProxy));
    const id = await createWsSubscription(fhir);
    expect((await getToken(fhir, id)).url).toBe('wss://fhir.example.org/fhir/subscription-websocket');
    const res = await fhir<Parameters>(`Subscription/${id}/$get-ws-binding-token`, { headers: { 'X-Forwarded-Proto': 'http', 'X-Forwarded-Host': 'other.example' } });
    expect(tokenOf(res.body).url).toBe('wss://fhir.example.org/fhir/subscription-websocket');
  });

  it('binds on the path the proxy forwards to, and notifications name the public base', async () => {
    const fhir = fhirClient(listening(behindProxy));
    const patient = 'Patient/ws-url-1';
    const id = await createWsSubscription(fhir, { filters: [`Encounter?patient=${patient}`] });
    const t = await getToken(fhir, id);
    // The proxy terminates TLS and forwards the same path to the plain listener.
    const ws = await WsClient.connect(`${listening(behindProxy).replace(/^http/, 'ws').replace(/\/fhir$/, '')}${new URL(t.url).pathname}`);
    ws.send(`bind-with-token ${t.token}`);
    const hs = await ws.notification('handshake', id);
    expect(hs.params.parameter?.find((p) => p.name === 'subscription')?.valueReference?.reference).toBe(`${PUBLIC_BASE}/Subscription/${id}`);
    const encounter = await admit(fhir, patient);
    const ev = await ws.notification('event-notification', id);
    expect(ev.events).toEqual([{ eventNumber: '1', focus: `${PUBLIC_BASE}/Encounter/${encounter.id}` }]);
    ws.close();
  });
});

describe('websocket-url without a configured base', () => {
  it('follows the Host the client used', async () => {
    const byName = direct.baseUrl.replace('127.0.0.1', 'localhost');
    const id = await createWsSubscription(direct.fhir);
    const res = await fetch(`${byName}/Subscription/${id}/$get-ws-binding-token`);
    expect(tokenOf((await res.json()) as Parameters).url).toBe(`${byName.replace(/^http/, 'ws')}/subscription-websocket`);
  });

  it('does not trust X-Forwarded-Proto / X-Forwarded-Host (configure --base-url instead)', async () => {
    const id = await createWsSubscription(direct.fhir);
    const res = await direct.fhir<Parameters>(`Subscription/${id}/$get-ws-binding-token`, { headers: { 'X-Forwarded-Proto': 'https', 'X-Forwarded-Host': 'fhir.example.org' } });
    expect(res.status).toBe(200);
    expect(tokenOf(res.body).url).toBe(`${direct.baseUrl.replace(/^http/, 'ws')}/subscription-websocket`);
  });

  it('maps http → ws and https → wss, a configured base winning over the request', () => {
    expect(websocketUrl('https://fhir.example.org/fhir', { protocol: 'http', host: '10.0.0.5:8080' }, true)).toBe('wss://fhir.example.org/fhir/subscription-websocket');
    expect(websocketUrl('http://127.0.0.1:8080/fhir', { protocol: 'http', host: 'localhost:8080' }, false)).toBe('ws://localhost:8080/fhir/subscription-websocket');
    expect(websocketUrl('http://127.0.0.1:8080/fhir/', { protocol: 'https', host: 'fhir.example.org' }, false)).toBe('wss://fhir.example.org/fhir/subscription-websocket');
  });
});
