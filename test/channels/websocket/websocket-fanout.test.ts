/**
 * The fan-out of one write to many subscriptions, each bound on its own connection: every client gets
 * a notification of its own (its subscription, its event numbers, its own status id) with the same
 * events and entries; and a subscription changed while bound gets its next events in its new form.
 */
import type { Encounter, Parameters, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { r4NotificationErrors } from '../../support/ig-validator.js';
import { IG, startE2E, type E2E } from '../../support/subscription-e2e.js';
import { admit, bindNew, createWsSubscription, WsClient } from './ws-support.js';

let e2e: E2E;
let n = 0;
const newPatient = () => `Patient/ws-fanout-${++n}`;

beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => {
  await e2e?.close();
});

async function bound(id: string): Promise<WsClient> {
  const { ws } = await bindNew(e2e.fhir, id);
  return ws;
}

describe('one write, many subscriptions', () => {
  it('each client gets a notification of its own subscription, with its own numbers and status id', async () => {
    const patient = newPatient();
    const other = newPatient();
    const filters = (p: string) => [`Encounter?patient=${p}`];
    // `late` has seen two events of its own before the shared write: its numbers differ from the others'.
    const late = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient},${other}`] });
    const lateWs = await bound(late);
    await admit(e2e.fhir, other);
    await admit(e2e.fhir, other);
    expect((await lateWs.notification('event-notification', late)).eventsSince).toBe('1');
    expect((await lateWs.notification('event-notification', late)).eventsSince).toBe('2');
    const ids = [await createWsSubscription(e2e.fhir, { filters: filters(patient) }), await createWsSubscription(e2e.fhir, { filters: filters(patient) }), late];
    const clients = await Promise.all(ids.slice(0, 2).map(bound));
    clients.push(lateWs);

    const enc = await admit(e2e.fhir, patient);
    const got = await Promise.all(ids.map((id, i) => clients[i].notification('event-notification', id)));
    expect(got.map((g) => g.eventsSince)).toEqual(['1', '1', '3']);
    expect(got.map((g) => g.events)).toEqual([
      [{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }],
      [{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }],
      [{ eventNumber: '3', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }],
    ]);
    got.forEach((g, i) => {
      expect(g.params.parameter?.find((p) => p.name === 'subscription')?.valueReference?.reference).toBe(`${e2e.baseUrl}/Subscription/${ids[i]}`);
      expect(r4NotificationErrors(g.bundle)).toEqual([]);
    });
    const statusIds = got.map((g) => (g.bundle.entry![0].resource as Parameters).id);
    expect(new Set(statusIds).size).toBe(3);
    expect(got.map((g) => g.bundle.entry![0].fullUrl)).toEqual(statusIds.map((id) => `urn:uuid:${id}`));
    // Apart from the subscription-specific values, the same notification.
    expect(new Set(got.map((g) => JSON.stringify(g.bundle.entry!.slice(1))))).toEqual(new Set([JSON.stringify(got[0].bundle.entry!.slice(1))]));
    for (const ws of clients) ws.close();
  });
});

describe('a subscription changed while bound', () => {
  it('gets its next events in its new form (id-only → full-resource)', async () => {
    const patient = newPatient();
    const id = await createWsSubscription(e2e.fhir, { content: 'id-only', filters: [`Encounter?patient=${patient}`] });
    const ws = await bound(id);
    await admit(e2e.fhir, patient);
    const first = await ws.notification('event-notification', id);
    expect(first.bundle.entry![1].resource).toBeUndefined();

    const { body } = await e2e.fhir<Subscription>(`Subscription/${id}`);
    const changed: Subscription = { ...body, channel: { ...body.channel, _payload: { extension: [{ url: `${IG}backport-payload-content`, valueCode: 'full-resource' }] } } };
    expect((await e2e.fhir(`Subscription/${id}`, { method: 'PUT', body: changed })).status).toBe(200);
    const enc = await admit(e2e.fhir, patient);
    const second = await ws.notification('event-notification', id);
    expect(second.eventsSince).toBe('2');
    expect((second.bundle.entry![1].resource as Encounter).id).toBe(enc.id);
    ws.close();
  });
});
