/**
 * Binding over a real websocket: the three bind forms, handshakes, live event notifications (valid
 * against the IG profiles, at each content level), several subscriptions on one connection, re-binding
 * with a fresh token, unbinding, and subscriptions that end while bound.
 */
import type { Encounter } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4NotificationErrors } from '../../support/ig-validator.js';
import { startE2E, type E2E } from '../../support/subscription-e2e.js';
import { admit, bindNew, createWsSubscription, getToken, WsClient } from './ws-support.js';

let e2e: E2E;
let n = 0;
/** A patient of its own per test, so each test's subscriptions see only its own Encounters. */
const newPatient = () => `Patient/ws-bind-${++n}`;

beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => {
  await e2e?.close();
});

describe('bind-with-token forms', () => {
  it.each([
    ['space', (t: string) => `bind-with-token ${t}`],
    ['colon', (t: string) => `bind-with-token: ${t}`],
    ['JSON', (t: string) => JSON.stringify({ type: 'bind-with-token', payload: { token: t } })],
  ])('%s form: handshake, then the event, valid against the IG profiles', async (_form, message) => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const t = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(t.url);
    ws.send(message(t.token));
    const hs = await ws.notification('handshake', id);
    expect(hs.status).toBe('active');
    expect(hs.eventsSince).toBe('0');
    expect(r4NotificationErrors(hs.bundle)).toEqual([]);

    const enc = await admit(e2e.fhir, patient);
    const ev = await ws.notification('event-notification', id);
    expect(ev.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
    expect(ev.eventsSince).toBe('1');
    expect(r4NotificationErrors(ev.bundle)).toEqual([]);
    ws.close();
  });
});

describe('content levels', () => {
  it.each(['empty', 'id-only', 'full-resource'] as const)('%s', async (content) => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { content, filters: [`Encounter?patient=${patient}`] });
    const { ws } = await bindNew(e2e.fhir, id);
    const enc = await admit(e2e.fhir, patient);
    const ev = await ws.notification('event-notification', id);
    expect(r4NotificationErrors(ev.bundle)).toEqual([]);
    const entries = (ev.bundle).entry!.slice(1);
    if (content === 'empty') {
      expect(entries).toEqual([]);
      expect(ev.events[0].focus).toBeUndefined();
    } else {
      expect(ev.events[0].focus).toBe(`${e2e.baseUrl}/Encounter/${enc.id}`);
      const focus = entries.find((e) => e.fullUrl === `${e2e.baseUrl}/Encounter/${enc.id}`);
      expect(focus).toBeDefined();
      if (content === 'full-resource') expect((focus!.resource as Encounter).id).toBe(enc.id);
      else expect(focus!.resource).toBeUndefined();
    }
    ws.close();
  });
});

describe('one connection, several subscriptions', () => {
  it('binds two subscriptions with one token (a handshake each) and a third with another token', async () => {
    const p1 = newPatient();
    const p2 = newPatient();
    const a = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${p1}`] });
    const b = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${p2}`] });
    const c = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${p1}`], content: 'empty' });
    const t = await getToken(e2e.fhir, [a, b]);
    const ws = await WsClient.connect(t.url);
    ws.send(`bind-with-token ${t.token}`);
    await ws.notification('handshake', a);
    await ws.notification('handshake', b);
    const t2 = await getToken(e2e.fhir, c);
    ws.send(`bind-with-token ${t2.token}`);
    await ws.notification('handshake', c);

    const e1 = await admit(e2e.fhir, p1);
    await admit(e2e.fhir, p2);
    expect((await ws.notification('event-notification', a)).events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${e1.id}` }]);
    expect((await ws.notification('event-notification', b)).events.map((e) => e.eventNumber)).toEqual(['1']);
    expect((await ws.notification('event-notification', c)).events).toEqual([{ eventNumber: '1', focus: undefined }]);
    ws.close();
  });

  it('binds concurrently: two bind messages sent at once each get their handshake', async () => {
    const a = await createWsSubscription(e2e.fhir);
    const b = await createWsSubscription(e2e.fhir);
    const [ta, tb] = await Promise.all([getToken(e2e.fhir, a), getToken(e2e.fhir, b)]);
    const ws = await WsClient.connect(ta.url);
    ws.send(`bind-with-token ${ta.token}`);
    ws.send({ type: 'bind-with-token', payload: { token: tb.token } });
    await ws.notification('handshake', a);
    await ws.notification('handshake', b);
    ws.close();
  });

  it('several connections bound to one subscription each get every event once', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const t = await getToken(e2e.fhir, id);
    const clients = await Promise.all([1, 2, 3].map(() => WsClient.connect(t.url)));
    for (const ws of clients) ws.send(`bind-with-token ${t.token}`);
    for (const ws of clients) await ws.notification('handshake', id);
    await admit(e2e.fhir, patient);
    await admit(e2e.fhir, patient);
    for (const ws of clients) {
      await ws.next((f) => f.json?.resourceType === 'Bundle' && f.text.includes('"valueString":"2"') && f.text.includes('event-notification'), 'event 2');
      expect([...ws.takeEvents(id)]).toEqual([1]);
      ws.close();
    }
  });
});

describe('re-bind and unbind', () => {
  it('re-binding with a fresh token on the same connection sends a new handshake and loses or repeats nothing', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const { ws } = await bindNew(e2e.fhir, id);
    await admit(e2e.fhir, patient);
    await ws.notification('event-notification', id);
    const fresh = await getToken(e2e.fhir, id);
    ws.send(`bind-with-token: ${fresh.token}`);
    const hs = await ws.notification('handshake', id);
    expect(hs.eventsSince).toBe('1');
    await admit(e2e.fhir, patient);
    const ev = await ws.notification('event-notification', id);
    expect(ev.events.map((e) => e.eventNumber)).toEqual(['2']);
    ws.close();
  });

  it('unbind-from-token stops notifications for that token only, acknowledged with an information frame', async () => {
    const patient = newPatient();
    const a = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const b = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const ta = await getToken(e2e.fhir, a);
    const tb = await getToken(e2e.fhir, b);
    const ws = await WsClient.connect(ta.url);
    ws.send(`bind-with-token ${ta.token}`);
    ws.send(`bind-with-token ${tb.token}`);
    await ws.notification('handshake', a);
    await ws.notification('handshake', b);
    ws.send({ type: 'unbind-from-token', payload: { token: ta.token } });
    const ack = await ws.outcome();
    expect(ack.severity).toBe('information');
    expect(ack.diagnostics).toContain(`Subscription/${a}`);
    await admit(e2e.fhir, patient);
    await ws.notification('event-notification', b);
    expect(ws.takeEvents(a)).toEqual([]);
    ws.close();
  });

  it('a bound subscription turned off ends its binding with an error frame', async () => {
    const id = await createWsSubscription(e2e.fhir);
    const { ws } = await bindNew(e2e.fhir, id);
    const { body } = await e2e.fhir(`Subscription/${id}`);
    expect((await e2e.fhir(`Subscription/${id}`, { method: 'PUT', body: { ...body, status: 'off' } })).status).toBe(200);
    const o = await ws.outcome('CLARION_WS_SUBSCRIPTION_ENDED');
    expect(o.diagnostics).toContain('off');
    ws.close();
  });

  it('answers ping with pong', async () => {
    const t = await getToken(e2e.fhir, await createWsSubscription(e2e.fhir));
    const ws = await WsClient.connect(t.url);
    ws.send('ping');
    expect((await ws.next((f) => f.json?.type === 'pong')).json).toEqual({ type: 'pong' });
    ws.close();
  });

  it('sends heartbeats per heartbeatPeriod while bound', async () => {
    const id = await createWsSubscription(e2e.fhir, { heartbeatPeriod: 1 });
    const { ws } = await bindNew(e2e.fhir, id);
    const hb = await ws.notification('heartbeat', id);
    expect(hb.status).toBe('active');
    expect(r4NotificationErrors(hb.bundle)).toEqual([]);
    ws.close();
  });
});
