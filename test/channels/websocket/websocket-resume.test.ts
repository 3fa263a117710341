/**
 * Resume: a client that reconnects asks for every event after the last event number it saw
 * (`{"type":"bind-with-token","payload":{"token":…,"lastEventNumber":n}}`) and receives the missed
 * events in order, then live ones — no gap, no duplicate — while events that happened with no socket
 * bound were kept in the log and counted.
 */
import type { Bundle } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../../src/subscriptions/event-log.js';
import { startE2E, type E2E } from '../../support/subscription-e2e.js';
import { admit, bindNew, collectEvents, createWsSubscription, getToken, range, WsClient } from './ws-support.js';

let e2e: E2E;
let n = 0;
const newPatient = () => `Patient/ws-resume-${++n}`;

beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => {
  await e2e?.close();
});



describe('resume after reconnect', () => {
  it('sends the missed events in order, then live ones, with no gap and no duplicate', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    const { ws: first } = await bindNew(e2e.fhir, id);
    await admit(e2e.fhir, patient);
    expect(await collectEvents(first, id, 1)).toEqual([1]);
    first.close();
    await first.closedBy();

    // Written while no socket is bound: kept in the log and counted.
    for (let i = 0; i < 5; i++) await admit(e2e.fhir, patient);
    await e2e.clarion.subscriptions.eventsIdle();
    const status = await e2e.fhir<Bundle>(`Subscription/${id}/$status`);
    const params = (status.body.entry![0].resource as unknown as { parameter: { name: string; valueString?: string }[] }).parameter;
    expect(params.find((p) => p.name === 'events-since-subscription-start')?.valueString).toBe('6');

    const fresh = await getToken(e2e.fhir, id);
    const second = await WsClient.connect(fresh.url);
    // Live writes race with the resume: the client must still see 2.. in order exactly once.
    const live = (async () => {
      for (let i = 0; i < 4; i++) await admit(e2e.fhir, patient);
    })();
    second.send({ type: 'bind-with-token', payload: { token: fresh.token, lastEventNumber: 1 } });
    await second.notification('handshake', id);
    await live;
    expect(await collectEvents(second, id, 9)).toEqual(range(2, 10));
    await admit(e2e.fhir, patient);
    expect(await collectEvents(second, id, 1)).toEqual([11]);
    expect(second.takeEvents(id)).toEqual([]);
    second.close();
  });

  it('accepts event numbers as strings and per subscription', async () => {
    const p1 = newPatient();
    const p2 = newPatient();
    const a = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${p1}`] });
    const b = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${p2}`] });
    for (let i = 0; i < 3; i++) {
      await admit(e2e.fhir, p1);
      await admit(e2e.fhir, p2);
    }
    await e2e.clarion.subscriptions.eventsIdle();
    const t = await getToken(e2e.fhir, [a, b]);
    const ws = await WsClient.connect(t.url);
    ws.send({ type: 'bind-with-token', payload: { token: t.token, lastEventNumber: { [a]: '1', [b]: 3 } } });
    await ws.notification('handshake', a);
    await ws.notification('handshake', b);
    expect(await collectEvents(ws, a, 2)).toEqual([2, 3]);
    await admit(e2e.fhir, p2);
    expect(await collectEvents(ws, b, 1)).toEqual([4]);
    ws.close();
  });

  it('without lastEventNumber a new binding starts with live events only', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    await admit(e2e.fhir, patient);
    await e2e.clarion.subscriptions.eventsIdle();
    const t = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(t.url);
    ws.send(`bind-with-token ${t.token}`);
    expect((await ws.notification('handshake', id)).eventsSince).toBe('1');
    await admit(e2e.fhir, patient);
    expect(await collectEvents(ws, id, 1)).toEqual([2]);
    ws.close();
  });

  it('refuses a lastEventNumber beyond the last event', async () => {
    const id = await createWsSubscription(e2e.fhir);
    const t = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(t.url);
    ws.send({ type: 'bind-with-token', payload: { token: t.token, lastEventNumber: 99 } });
    const o = await ws.outcome('CLARION_WS_INVALID_MESSAGE');
    expect(o.diagnostics).toContain('beyond the last event');
    ws.close();
  });

  it('warns when events to resume were removed by retention, then continues from the oldest retained', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`] });
    for (let i = 0; i < 4; i++) await admit(e2e.fhir, patient);
    await e2e.clarion.subscriptions.eventsIdle();
    await new EventLog(e2e.clarion.db).pruneEvents(new Date(), { maxCount: 2, maxAgeDays: 30 });
    const t = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(t.url);
    ws.send({ type: 'bind-with-token', payload: { token: t.token, lastEventNumber: 0 } });
    await ws.notification('handshake', id);
    const warning = await ws.outcome('CLARION_WS_EVENTS_NOT_RETAINED');
    expect(warning.severity).toBe('warning');
    expect(warning.diagnostics).toContain('Events 1–2');
    expect(await collectEvents(ws, id, 2)).toEqual([3, 4]);
    ws.close();
  });
});
