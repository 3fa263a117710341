/**
 * `$status` over HTTP (real server): instance and type level, GET and POST (Parameters and form),
 * id/status filters (OR within, AND across), the empty searchset, errors, notification versions, and
 * IG validity of every answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Parameters } from 'fhir/r4.js';
import { installSubscriptionOperations } from '../../src/server/subscription-operations.js';
import { r4StatusSearchsetErrors } from '../support/ig-validator.js';
import { fhirClient, firstIssue, startTestServer, type TestServer } from '../support/server.js';
import { createSubscription, TOPIC, upsertState } from '../support/subscription-seed.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;

beforeAll(async () => {
  server = await startTestServer({}, { background: false });
  installSubscriptionOperations(server.clarion);
  fhir = fhirClient(server.baseUrl);
  const { store, db } = server.clarion;
  await createSubscription(store, { id: 'act', content: 'full-resource' });
  await upsertState(db, 'act', { status: 'active', eventsSinceStart: 5 });
  await createSubscription(store, { id: 'err', content: 'id-only' });
  await upsertState(db, 'err', { status: 'error', eventsSinceStart: 3, errorCode: 'no-response', errorMessage: 'no answer in 10 s' });
  await createSubscription(store, { id: 'off', content: 'empty', status: 'off' }); // no state row yet
  await createSubscription(store, { id: 'r4b', payload: 'application/fhir+json; fhirVersion=4.3' });
  await upsertState(db, 'r4b', { status: 'active', eventsSinceStart: 1 });
  await createSubscription(store, { id: 'deleted' });
  await store.delete('Subscription', 'deleted');
});
afterAll(async () => server.close());

const param = (p: Parameters, name: string) => p.parameter?.find((x) => x.name === name);
const ids = (b: Bundle) => (b.entry ?? []).map((e) => (param(e.resource as Parameters, 'subscription')?.valueReference?.reference ?? '').split('/').pop());

describe('$status at instance level', () => {
  it('answers a searchset with one query-status Parameters (GET)', async () => {
    const res = await fhir<Bundle>('Subscription/act/$status');
    expect(res.status).toBe(200);
    const b = res.body;
    expect(r4StatusSearchsetErrors(b)).toEqual([]);
    expect(b).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    const entry = b.entry![0];
    expect(entry.search).toEqual({ mode: 'match' });
    expect(entry.request).toBeUndefined();
    expect(entry.response).toBeUndefined();
    expect(entry.fullUrl).toMatch(/^urn:uuid:/);
    const p = entry.resource as Parameters;
    expect(param(p, 'subscription')?.valueReference?.reference).toBe(`${server.baseUrl}/Subscription/act`);
    expect(param(p, 'topic')?.valueCanonical).toBe(TOPIC);
    expect(param(p, 'status')?.valueCode).toBe('active');
    expect(param(p, 'type')?.valueCode).toBe('query-status');
    expect(param(p, 'events-since-subscription-start')?.valueString).toBe('5');
    expect(param(p, 'error')).toBeUndefined();
  });

  it('does not increment events-since-subscription-start', async () => {
    await fhir('Subscription/act/$status');
    const again = await fhir<Bundle>('Subscription/act/$status');
    expect(param(again.body.entry![0].resource as Parameters, 'events-since-subscription-start')?.valueString).toBe('5');
  });

  it('reports the error as a subscription-error CodeableConcept', async () => {
    const res = await fhir<Bundle>('Subscription/err/$status', { method: 'POST', body: { resourceType: 'Parameters' } });
    expect(res.status).toBe(200);
    expect(r4StatusSearchsetErrors(res.body)).toEqual([]);
    const p = res.body.entry![0].resource as Parameters;
    expect(param(p, 'status')?.valueCode).toBe('error');
    expect(param(p, 'error')?.valueCodeableConcept).toEqual({
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/subscription-error', code: 'no-response' }],
      text: 'no answer in 10 s',
    });
  });

  it('uses the resource when the pipeline has no state yet; topic is reported for empty content too', async () => {
    const res = await fhir<Bundle>('Subscription/off/$status');
    const p = res.body.entry![0].resource as Parameters;
    expect(param(p, 'status')?.valueCode).toBe('off');
    expect(param(p, 'events-since-subscription-start')?.valueString).toBe('0');
    expect(param(p, 'topic')?.valueCanonical).toBe(TOPIC);
    expect(r4StatusSearchsetErrors(res.body)).toEqual([]);
  });

  it('ignores id and status parameters', async () => {
    const res = await fhir<Bundle>('Subscription/act/$status?id=err&status=off');
    expect(ids(res.body)).toEqual(['act']);
  });

  it('404 for an unknown id, 410 for a deleted one', async () => {
    const unknown = await fhir('Subscription/nope/$status');
    expect(unknown.status).toBe(404);
    expect(unknown.body.resourceType).toBe('OperationOutcome');
    expect(firstIssue(unknown.body).clarionCode).toBe('CLARION_NOT_FOUND');
    expect((await fhir('Subscription/deleted/$status')).status).toBe(410);
  });

  it('answers in R4B form for a subscription that asked for fhirVersion=4.3', async () => {
    const res = await fhir('Subscription/r4b/$status');
    expect(res.status).toBe(200);
    const status = res.body.entry[0].resource;
    expect(status).toMatchObject({ resourceType: 'SubscriptionStatus', type: 'query-status', status: 'active', eventsSinceSubscriptionStart: '1' });
    expect(res.body.entry[0].request).toBeUndefined();
  });
});

describe('$status at type level', () => {
  it('without parameters lists every (non-deleted) Subscription', async () => {
    const res = await fhir<Bundle>('Subscription/$status');
    expect(res.status).toBe(200);
    expect(ids(res.body)).toEqual(['act', 'err', 'off', 'r4b']);
    // Mixed notification versions: R4 for all.
    expect(res.body.entry!.every((e) => e.resource?.resourceType === 'Parameters')).toBe(true);
    expect(r4StatusSearchsetErrors(res.body)).toEqual([]);
    expect(res.body.total).toBe(4);
  });

  it('ORs values within a parameter (repeated or comma-separated) and ANDs across parameters', async () => {
    expect(ids((await fhir<Bundle>('Subscription/$status?id=act&id=err')).body)).toEqual(['act', 'err']);
    expect(ids((await fhir<Bundle>('Subscription/$status?status=error,off')).body)).toEqual(['err', 'off']);
    expect(ids((await fhir<Bundle>('Subscription/$status?status=active&status=off&id=act,off,err')).body)).toEqual(['act', 'off']);
  });

  it('takes POST Parameters and form bodies', async () => {
    const viaParams = await fhir<Bundle>('Subscription/$status', {
      method: 'POST',
      body: { resourceType: 'Parameters', parameter: [{ name: 'id', valueId: 'err' }, { name: 'id', valueId: 'act' }, { name: 'status', valueCode: 'error' }] },
    });
    expect(viaParams.status).toBe(200);
    expect(ids(viaParams.body)).toEqual(['err']);
    expect(r4StatusSearchsetErrors(viaParams.body)).toEqual([]);
    const viaForm = await fhir<Bundle>('Subscription/$status', { method: 'POST', body: 'status=active', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(ids(viaForm.body)).toEqual(['act', 'r4b']);
  });

  it('answers an empty searchset when nothing matches', async () => {
    const res = await fhir<Bundle>('Subscription/$status?id=nope&id=deleted');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 0 });
    expect(res.body.entry).toBeUndefined();
    expect(r4StatusSearchsetErrors(res.body)).toEqual([]);
  });

  it('answers in R4B when every match asked for it', async () => {
    const res = await fhir('Subscription/$status?id=r4b');
    expect(res.body.entry[0].resource.resourceType).toBe('SubscriptionStatus');
  });

  it('400 for an invalid status code or id, naming the parameter', async () => {
    const bad = await fhir('Subscription/$status?status=paused');
    expect(bad.status).toBe(400);
    expect(firstIssue(bad.body)).toMatchObject({ clarionCode: 'CLARION_INVALID_PARAMETER', expression: ['status'] });
    expect(firstIssue(bad.body).diagnostics).toContain("'paused'");
    const badId = await fhir('Subscription/$status?id=a%20b');
    expect(badId.status).toBe(400);
    expect(firstIssue(badId.body).expression).toEqual(['id']);
  });

  it('400 for a body that is not Parameters; unknown parameters only under handling=strict', async () => {
    const notParams = await fhir('Subscription/$status', { method: 'POST', body: { resourceType: 'Patient' } });
    expect(notParams.status).toBe(400);
    expect(firstIssue(notParams.body).diagnostics).toContain('Parameters');
    expect((await fhir('Subscription/$status?foo=1')).status).toBe(200);
    const strict = await fhir('Subscription/$status?foo=1', { headers: { prefer: 'handling=strict' } });
    expect(strict.status).toBe(400);
    expect(firstIssue(strict.body).diagnostics).toContain("'foo'");
  });

  it('is not offered at system level, nor for other types; other methods are 405', async () => {
    expect((await fhir('$status')).status).toBe(404);
    expect((await fhir('Patient/$status')).status).toBe(404);
    expect((await fhir('Subscription/$status', { method: 'DELETE' })).status).toBe(405);
  });
});
