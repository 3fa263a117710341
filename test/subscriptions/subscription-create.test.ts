import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Channel } from '../../src/channels/channel.js';
import { serverWrite, updateSubscriptionState } from '../../src/server/subscription-resources.js';
import { describeIssues, IG_DIR, IG_PROFILES, igValidationErrors } from '../support/ig-validator.js';
import { ADMISSION, ENCOUNTER_COMPLETE, EXT, startSubscriptionServer, subscription, withChannel, withFilters, type SubscriptionTestServer } from './subscription-support.js';

let s: SubscriptionTestServer;

/** A stand-in for a channel that is not written yet (websocket, custom): accepts any endpoint. */
function fakeChannel(type: string): Channel {
  return { type, checkEndpoint: () => undefined, deliver: async () => ({ ok: true }), close: async () => {} };
}

beforeAll(async () => {
  s = await startSubscriptionServer();
});
afterAll(async () => {
  await s?.close();
});

async function create(body: unknown) {
  const res = await s.fhir('Subscription', { method: 'POST', body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

describe('POST Subscription', () => {
  it('201: stores the subscription with status requested and returns it', async () => {
    const sent = subscription();
    const res = await s.fhir('Subscription', { method: 'POST', body: sent });
    expect(res.status).toBe(201);
    expect(res.headers.get('location')).toMatch(/Subscription\/[^/]+\/_history\/1$/);
    expect(res.body.id).toBeTruthy();
    expect(res.body.status).toBe('requested');
    const read = await s.fhir(`Subscription/${res.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(res.body);
  });

  it('echoes channel.header, channel.payload (with its extension), filters and channel extensions exactly as sent', async () => {
    const sent = withChannel({
      header: ['Authorization: Bearer secret-token-abc-123', 'X-Trace=abc'],
      payload: 'application/fhir+json; fhirVersion=4.0',
    });
    const body = await create(sent);
    expect(body.channel.header).toEqual(sent.channel.header);
    expect(body.channel.payload).toBe('application/fhir+json; fhirVersion=4.0');
    expect(body.channel._payload).toEqual(sent.channel._payload);
    expect(body.channel.extension).toEqual(sent.channel.extension);
    expect(body._criteria).toEqual(sent._criteria);
    expect(body.reason).toBe(sent.reason);
    expect(body.end).toBe(sent.end);
  });

  it('stores a resource valid against the IG backport-subscription profile', async () => {
    const body = await create(subscription());
    expect(describeIssues(igValidationErrors(body, IG_PROFILES.subscription))).toEqual([]);
  });

  it('accepts the IG admission example (client status requested instead of the example\'s server-set active)', async () => {
    const ig = JSON.parse(readFileSync(join(IG_DIR, 'Subscription-subscription-admission.json'), 'utf8'));
    const body = await create({ ...ig, id: undefined, status: 'requested', end: '2099-01-01T00:00:00Z' });
    expect(body.status).toBe('requested');
    expect(body.criteria).toBe(ADMISSION);
  });

  it.each([
    ['search-URL style', 'Encounter?patient=Patient/123'],
    ['several AND-ed params', 'Encounter?patient=Patient/123&class=http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP'],
    ['bare param=value', 'patient=Patient/123'],
    ['Type.param=value', 'Encounter.patient=Patient/123'],
    ['an allowed modifier', 'Encounter?class:not=http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB'],
    ['percent-encoded value', 'Encounter?class=http%3A%2F%2Fterminology.hl7.org%2FCodeSystem%2Fv3-ActCode%7CIMP'],
    ['an OR list', 'patient=Patient/1,Patient/2'],
  ])('accepts filter criteria in %s', async (_label, filter) => {
    const body = await create(withFilters([filter]));
    expect(body._criteria.extension[0].valueString).toBe(filter);
  });

  it('accepts several filter extensions and a comparator the topic allows', async () => {
    await create(withFilters(['Encounter?patient=Patient/123', 'length=gt5'], { criteria: ENCOUNTER_COMPLETE }));
  });

  it('accepts fhirVersion=4.3 (R4B notifications) and application/json', async () => {
    await create(withChannel({ payload: 'application/fhir+json;fhirVersion=4.3' }));
    await create(withChannel({ payload: 'application/json' }));
  });

  it('accepts every content level and a subscription without filters, header or channel extensions', async () => {
    for (const valueCode of ['empty', 'id-only', 'full-resource']) {
      const body = await create(withChannel({ _payload: { extension: [{ url: EXT.content, valueCode }] } }));
      expect(body.channel._payload.extension[0].valueCode).toBe(valueCode);
    }
    const base = subscription();
    const { header: _h, extension: _e, ...channel } = base.channel;
    const { _criteria: _c, ...rest } = base;
    await create({ ...rest, channel });
  });

  it('keeps cross-version extensions for elements the backport does not represent (identifier)', async () => {
    const ext = { url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.identifier', valueIdentifier: { value: 'abc' } };
    const body = await create(subscription({ extension: [ext] }));
    expect(body.extension).toEqual([ext]);
  });

  it('status off is kept; an end in the past turns the subscription off', async () => {
    expect((await create(subscription({ status: 'off' }))).status).toBe('off');
    expect((await create(subscription({ end: '2020-12-31T12:00:00Z' }))).status).toBe('off');
  });

  it('drops a client-sent Subscription.error (server-owned)', async () => {
    const body = await create(subscription({ error: 'I made this up' }));
    expect(body.error).toBeUndefined();
  });

  it('websocket and email start active, message requested (once their channels are registered)', async () => {
    s.services.channels.register(fakeChannel('websocket'));
    s.services.channels.register(fakeChannel('email'));
    s.services.channels.register(fakeChannel('message'));
    const { endpoint: _e, ...ws } = subscription().channel;
    expect((await create(subscription({ channel: { ...ws, type: 'websocket' } }))).status).toBe('active');
    expect((await create(withChannel({ type: 'email', endpoint: 'mailto:a@example.org' }))).status).toBe('active');
    expect((await create(withChannel({ type: 'message' }))).status).toBe('requested');
  });

  it('accepts a custom channel (backport-channel-type) once it is registered', async () => {
    s.services.channels.register(fakeChannel('zulip'), { system: 'http://example.org/subscription-channel-type', code: 'zulip' });
    const ig = JSON.parse(readFileSync(join(IG_DIR, 'Subscription-subscription-zulip.json'), 'utf8'));
    const body = await create({ ...ig, id: undefined, status: 'requested', end: undefined });
    expect(body.channel._type).toEqual(ig.channel._type);
    expect(body.status).toBe('requested');
  });
});

describe('PUT Subscription and server-owned status', () => {
  it('a client may PUT back what it read; the server moves status with serverWrite / updateSubscriptionState', async () => {
    const created = await create(subscription());
    const id = created.id as string;
    const put1 = await s.fhir(`Subscription/${id}`, { method: 'PUT', body: created });
    expect(put1.status).toBe(200);
    expect(put1.body.status).toBe('requested');

    const active = await updateSubscriptionState(s.clarion.store, id, { status: 'active' });
    expect(active.status).toBe('active');
    expect(active.channel.header).toEqual(created.channel.header);

    // PUT back of the active resource keeps it active (status unchanged by the client).
    const read = (await s.fhir(`Subscription/${id}`)).body;
    const put2 = await s.fhir(`Subscription/${id}`, { method: 'PUT', body: { ...read, reason: 'changed reason' } });
    expect(put2.status).toBe(200);
    expect(put2.body.status).toBe('active');
    expect(put2.body.reason).toBe('changed reason');

    // Changing the endpoint of a live rest-hook subscription sends it back to requested (new handshake).
    const put3 = await s.fhir(`Subscription/${id}`, { method: 'PUT', body: { ...put2.body, channel: { ...put2.body.channel, endpoint: 'https://example.org/other' } } });
    expect(put3.status).toBe(200);
    expect(put3.body.status).toBe('requested');
  });

  it('error text is kept while the client leaves status unchanged and cleared on re-activation (requested)', async () => {
    const created = await create(subscription());
    const id = created.id as string;
    const errored = await updateSubscriptionState(s.clarion.store, id, { status: 'error', error: 'no-response: endpoint timed out' });
    expect(errored.error).toBe('no-response: endpoint timed out');
    const keep = await s.fhir(`Subscription/${id}`, { method: 'PUT', body: { ...errored, error: 'client text' } });
    expect(keep.status).toBe(200);
    expect(keep.body.status).toBe('error');
    expect(keep.body.error).toBe('no-response: endpoint timed out');
    const again = await s.fhir(`Subscription/${id}`, { method: 'PUT', body: { ...keep.body, status: 'requested' } });
    expect(again.body.status).toBe('requested');
    expect(again.body.error).toBeUndefined();
    const off = await s.fhir(`Subscription/${id}`, { method: 'PUT', body: { ...again.body, status: 'off' } });
    expect(off.body.status).toBe('off');
  });

  it('serverWrite marks a write as the server\'s: the marker is never stored', async () => {
    const created = await create(subscription());
    const { resource } = await s.clarion.store.update(serverWrite({ ...created, status: 'active' }));
    expect((resource as { status?: string }).status).toBe('active');
    expect(Object.getOwnPropertySymbols(resource)).toEqual([]);
    const read = (await s.fhir(`Subscription/${created.id}`)).body;
    expect(read.status).toBe('active');
  });
});

describe('search Subscription', () => {
  let zid: string;
  beforeAll(async () => {
    const body = await create(
      withFilters(['Encounter?patient=Patient/search-me'], {
        criteria: ENCOUNTER_COMPLETE,
        channel: { ...subscription().channel, endpoint: 'https://search.example.org/hook', _payload: { extension: [{ url: EXT.content, valueCode: 'full-resource' }] } },
      }),
    );
    zid = body.id;
  });

  const ids = (res: { body: any }) => (res.body.entry ?? []).map((e: any) => e.resource.id);

  it('by url (channel.endpoint), status and type (R4 core parameters)', async () => {
    expect(ids(await s.fhir('Subscription?url=https://search.example.org/hook'))).toEqual([zid]);
    expect(ids(await s.fhir('Subscription?url=https://search.example.org/hook&status=requested&type=rest-hook'))).toEqual([zid]);
    expect(ids(await s.fhir('Subscription?url=https://search.example.org/hook&status=active'))).toEqual([]);
  });

  it('by the IG parameters topic, filter-criteria, payload-type and custom-channel', async () => {
    const byTopic = ids(await s.fhir(`Subscription?topic=${encodeURIComponent(ENCOUNTER_COMPLETE)}&_count=100`));
    expect(byTopic).toContain(zid);
    expect(ids(await s.fhir(`Subscription?topic=${encodeURIComponent(ADMISSION)}&_count=100`))).not.toContain(zid);
    expect(ids(await s.fhir('Subscription?filter-criteria:contains=search-me'))).toEqual([zid]);
    expect(ids(await s.fhir('Subscription?payload-type=full-resource&url=https://search.example.org/hook'))).toEqual([zid]);
    const zulip = ids(await s.fhir('Subscription?custom-channel=http://example.org/subscription-channel-type|zulip'));
    expect(zulip.length).toBeGreaterThanOrEqual(1);
    expect(zulip).not.toContain(zid);
  });
});
