/**
 * A websocket Subscription with `channel.payload = application/fhir+xml`: the handshake, heartbeats and
 * event notifications on the socket are FHIR XML text frames (the same R4 backport Bundles as JSON),
 * for live events (handed over by this process's event writer) and for events read back from the log
 * (a resume) alike. Parsed with the project's own XML converter.
 */
import type { Bundle } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { xmlToResource } from '../../../src/fhir/xml/fhir-xml.js';
import { r4NotificationErrors } from '../../support/ig-validator.js';
import { startE2E, statusOf, type E2E } from '../../support/subscription-e2e.js';
import { admit, createWsSubscription, getToken, WsClient } from './ws-support.js';

let e2e: E2E;
beforeAll(async () => {
  e2e = await startE2E();
});
afterAll(async () => {
  await e2e?.close();
});

/** The next XML frame, parsed: its notification status and the raw text. */
async function nextXml(ws: WsClient, what: string): Promise<ReturnType<typeof statusOf> & { text: string }> {
  const f = await ws.next((x) => x.text.startsWith('<'), what);
  expect(f.json).toBeUndefined(); // XML only, not JSON
  return { ...statusOf(xmlToResource(f.text) as Bundle), text: f.text };
}

const subscriptionRef = (s: ReturnType<typeof statusOf>) => s.params.parameter?.find((p) => p.name === 'subscription')?.valueReference?.reference;

describe('websocket notifications in FHIR XML', () => {
  it('sends the handshake and event notifications as XML Bundles', async () => {
    const patient = 'Patient/ws-xml-1';
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`], payload: 'application/fhir+xml', content: 'id-only' });
    const t = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(t.url);
    ws.send(`bind-with-token ${t.token}`);

    const hs = await nextXml(ws, 'the XML handshake');
    expect(hs.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?><Bundle xmlns="http:\/\/hl7.org\/fhir">/);
    expect(hs.type).toBe('handshake');
    expect(subscriptionRef(hs)).toBe(`${e2e.baseUrl}/Subscription/${id}`);
    expect(r4NotificationErrors(hs.bundle)).toEqual([]);

    const first = await admit(e2e.fhir, patient);
    const ev = await nextXml(ws, 'the XML event notification');
    expect(ev.type).toBe('event-notification');
    expect(subscriptionRef(ev)).toBe(`${e2e.baseUrl}/Subscription/${id}`);
    expect(ev.eventsSince).toBe('1');
    expect(ev.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${first.id}` }]);
    expect(r4NotificationErrors(ev.bundle)).toEqual([]);
    ws.close();
    await ws.closedBy();

    // Missed while disconnected, then resumed: read back from the log, still XML.
    const second = await admit(e2e.fhir, patient);
    const fresh = await getToken(e2e.fhir, id);
    const again = await WsClient.connect(fresh.url);
    again.send({ type: 'bind-with-token', payload: { token: fresh.token, lastEventNumber: 1 } });
    expect((await nextXml(again, 'the XML handshake')).type).toBe('handshake');
    const resumed = await nextXml(again, 'the resumed XML event');
    expect(resumed.events).toEqual([{ eventNumber: '2', focus: `${e2e.baseUrl}/Encounter/${second.id}` }]);
    again.close();
  });

  it('sends full-resource content as XML, the focus resource included', async () => {
    const patient = 'Patient/ws-xml-2';
    const id = await createWsSubscription(e2e.fhir, { filters: [`Encounter?patient=${patient}`], payload: 'application/fhir+xml', content: 'full-resource' });
    const t = await getToken(e2e.fhir, id);
    const ws = await WsClient.connect(t.url);
    ws.send(`bind-with-token ${t.token}`);
    await nextXml(ws, 'the XML handshake');
    const enc = await admit(e2e.fhir, patient);
    const ev = await nextXml(ws, 'the XML event notification');
    expect(ev.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
    const included = ev.bundle.entry?.find((e) => e.resource?.resourceType === 'Encounter')?.resource;
    expect(included).toMatchObject({ resourceType: 'Encounter', id: enc.id, subject: { reference: patient } });
    expect(r4NotificationErrors(ev.bundle)).toEqual([]);
    ws.close();
  });
});
