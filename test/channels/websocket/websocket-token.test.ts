/**
 * `$get-ws-binding-token` (instance and type level, GET and POST) and what a token may and may not
 * bind: unknown ids, non-websocket subscriptions, expired tokens, tokens for other subscriptions.
 * The advertised websocket-url (ws/wss, configured base, Host) is tested in websocket-url.test.ts.
 */
import type { Parameters } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { issueToken, redeemToken } from '../../../src/channels/websocket/binding-tokens.js';
import { firstIssue } from '../../support/server.js';
import { restHookSubscription, startE2E, type E2E } from '../../support/subscription-e2e.js';
import { bindNew, createWsSubscription, getToken, tokenOf, WsClient } from './ws-support.js';

let e2e: E2E;
let subA: string;
let subB: string;

beforeAll(async () => {
  e2e = await startE2E({ wsTokenLifetime: 1 });
  subA = await createWsSubscription(e2e.fhir);
  subB = await createWsSubscription(e2e.fhir);
});
afterAll(async () => {
  await e2e?.close();
});

describe('$get-ws-binding-token', () => {
  it('creates websocket subscriptions active, with no endpoint needed', async () => {
    const { body } = await e2e.fhir(`Subscription/${subA}`);
    expect(body.status).toBe('active');
    expect(body.channel.type).toBe('websocket');
  });

  it('answers at instance level (GET) with token, expiration, subscription and a ws:// url', async () => {
    const res = await e2e.fhir<Parameters>(`Subscription/${subA}/$get-ws-binding-token`);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const t = tokenOf(res.body);
    expect(t.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Date.parse(t.expiration)).toBeGreaterThan(Date.now() - 5_000);
    expect(t.subscriptions).toEqual([subA]);
    expect(t.url).toBe(`${e2e.baseUrl.replace(/^http/, 'ws')}/subscription-websocket`);
    expect(res.body.parameter?.map((p) => p.name)).toEqual(['token', 'expiration', 'subscription', 'websocket-url']);
  });

  it('answers at instance level by POST, ignoring id parameters there', async () => {
    const res = await e2e.fhir<Parameters>(`Subscription/${subA}/$get-ws-binding-token`, {
      method: 'POST',
      body: { resourceType: 'Parameters', parameter: [{ name: 'id', valueId: subB }] },
    });
    expect(res.status).toBe(200);
    expect(tokenOf(res.body).subscriptions).toEqual([subA]);
  });

  it('answers at type level for several ids, GET (repeated) and POST (Parameters)', async () => {
    const get = await e2e.fhir<Parameters>(`Subscription/$get-ws-binding-token?id=${subA}&id=${subB}`);
    expect(get.status).toBe(200);
    expect(tokenOf(get.body).subscriptions).toEqual([subA, subB]);
    const post = await e2e.fhir<Parameters>('Subscription/$get-ws-binding-token', {
      method: 'POST',
      body: { resourceType: 'Parameters', parameter: [{ name: 'id', valueId: subB }, { name: 'id', valueId: subA }] },
    });
    expect(post.status).toBe(200);
    expect(tokenOf(post.body).subscriptions).toEqual([subB, subA]);
    expect(tokenOf(post.body).token).not.toBe(tokenOf(get.body).token);
  });

  it('refuses a type-level call without ids (400)', async () => {
    const res = await e2e.fhir('Subscription/$get-ws-binding-token');
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_INVALID_PARAMETER');
  });

  it('refuses unknown ids (404) and deleted ones (410)', async () => {
    expect((await e2e.fhir('Subscription/nope/$get-ws-binding-token')).status).toBe(404);
    const typeLevel = await e2e.fhir(`Subscription/$get-ws-binding-token?id=${subA}&id=nope`);
    expect(typeLevel.status).toBe(404);
    const gone = await createWsSubscription(e2e.fhir);
    expect((await e2e.fhir(`Subscription/${gone}`, { method: 'DELETE' })).status).toBe(204);
    expect((await e2e.fhir(`Subscription/${gone}/$get-ws-binding-token`)).status).toBe(410);
  });

  it('refuses a rest-hook subscription (422 CLARION_WS_TOKEN_REFUSED)', async () => {
    const created = await e2e.fhir('Subscription', { method: 'POST', body: restHookSubscription({ endpoint: e2e.receiver.url }) });
    expect(created.status).toBe(201);
    const res = await e2e.fhir(`Subscription/${created.body.id}/$get-ws-binding-token`);
    expect(res.status).toBe(422);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_WS_TOKEN_REFUSED');
    expect(firstIssue(res.body).diagnostics).toContain('rest-hook');
  });
});

describe('binding tokens', () => {
  it('stores only a hash of the token', async () => {
    const t = await getToken(e2e.fhir, subA);
    const { rows } = await e2e.clarion.db.query<{ token_hash: string }>('SELECT token_hash FROM ws_binding_tokens');
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.some((r) => r.token_hash === t.token)).toBe(false);
  });

  it('refuses an unknown token with an error frame', async () => {
    const ws = await WsClient.connect((await getToken(e2e.fhir, subA)).url);
    ws.send('bind-with-token not-a-real-token');
    expect(await ws.outcome()).toMatchObject({ severity: 'error', code: 'CLARION_WS_TOKEN_INVALID' });
    ws.close();
  });

  it('refuses to resume a subscription the token does not cover', async () => {
    const t = await getToken(e2e.fhir, subA);
    const ws = await WsClient.connect(t.url);
    ws.send({ type: 'bind-with-token', payload: { token: t.token, lastEventNumber: { [subB]: 0 } } });
    const o = await ws.outcome();
    expect(o.code).toBe('CLARION_WS_TOKEN_INVALID');
    expect(o.diagnostics).toContain(`Subscription/${subB}`);
    // Nothing was bound: a valid bind afterwards gets its handshake.
    ws.send(`bind-with-token ${t.token}`);
    await ws.notification('handshake', subA);
    ws.close();
  });

  it('ends a binding when its token expires, refuses the expired token, and a fresh token resumes it', async () => {
    // Token lifetime is 1 s in this file: the server tells the client when the binding is suspended.
    const { ws, token: t } = await bindNew(e2e.fhir, subA);
    const expired = await ws.outcome('CLARION_WS_TOKEN_EXPIRED');
    expect(expired.severity).toBe('warning');
    expect(expired.diagnostics).toContain(`Subscription/${subA}`);
    ws.send(`bind-with-token ${t.token}`);
    expect(await ws.outcome('CLARION_WS_TOKEN_EXPIRED')).toMatchObject({ severity: 'error' });
    const fresh = await getToken(e2e.fhir, subA);
    ws.send(`bind-with-token ${fresh.token}`);
    await ws.notification('handshake', subA);
    ws.close();
  });

  it('binds a token only for the requester it was issued to (authenticated connections)', async () => {
    const db = e2e.clarion.db;
    const now = new Date();
    const issued = await issueToken(db, { requester: 'alice', subscriptionIds: [subA], now, lifetimeSeconds: 60 });
    expect((await redeemToken(db, issued.token, 'alice', now)).ok).toBe(true);
    expect(await redeemToken(db, issued.token, 'bob', now)).toEqual({ ok: false, reason: 'requester' });
    // An anonymous connection (a browser cannot send credentials on a websocket) is authorised by the token.
    expect((await redeemToken(db, issued.token, 'anonymous', now)).ok).toBe(true);
    const later = new Date(now.getTime() + 61_000);
    expect(await redeemToken(db, issued.token, 'alice', later)).toMatchObject({ ok: false, reason: 'expired' });
  });
});
