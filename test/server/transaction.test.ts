import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirClient, firstIssue, patient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;
const SYS = 'http://example.org/mrn';

beforeAll(async () => {
  server = await startTestServer();
  fhir = fhirClient(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
});

const tx = (entry: unknown[]) => ({ resourceType: 'Bundle', type: 'transaction', entry });
const obs = (subject: string, text = 'x') => ({ resourceType: 'Observation', status: 'final', code: { text }, subject: { reference: subject } });

async function count(type: string): Promise<number> {
  const res = await fhir(`${type}?_summary=count`);
  return res.body.total as number;
}

describe('transaction', () => {
  it('creates resources, rewriting urn:uuid references in any direction (including narrative)', async () => {
    const pUrn = 'urn:uuid:11111111-1111-4111-8111-111111111111';
    const oUrn = 'urn:uuid:22222222-2222-4222-8222-222222222222';
    const res = await fhir('', {
      method: 'POST',
      body: tx([
        // The observation comes first in the Bundle but refers to the patient created later.
        { fullUrl: oUrn, resource: obs(pUrn), request: { method: 'POST', url: 'Observation' } },
        {
          fullUrl: pUrn,
          resource: patient({
            text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml"><a href="${oUrn}">obs</a></div>` },
            link: [{ other: { reference: pUrn }, type: 'seealso' }],
          }),
          request: { method: 'POST', url: 'Patient' },
        },
      ]),
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
    const [oEntry, pEntry] = res.body.entry;
    expect(oEntry.response.status).toBe('201 Created');
    expect(oEntry.response.location).toMatch(/^Observation\/[^/]+\/_history\/1$/);
    expect(oEntry.response.etag).toBe('W/"1"');
    expect(pEntry.response.status).toBe('201 Created');
    const pid = pEntry.resource.id;
    const oid = oEntry.resource.id;
    expect(oEntry.resource.subject.reference).toBe(`Patient/${pid}`);
    expect(pEntry.resource.link[0].other.reference).toBe(`Patient/${pid}`);
    expect(pEntry.resource.text.div).toContain(`Observation/${oid}`);
    const stored = await fhir(`Observation/${oid}`);
    expect(stored.body.subject.reference).toBe(`Patient/${pid}`);
  });

  it('writes nothing when one entry fails, and reports the entry index with its status', async () => {
    const before = await count('Patient');
    const res = await fhir('', {
      method: 'POST',
      body: tx([
        { fullUrl: 'urn:uuid:aaaaaaaa-1111-4111-8111-111111111111', resource: patient(), request: { method: 'POST', url: 'Patient' } },
        { resource: patient({ id: 'tx-upd' }), request: { method: 'PUT', url: 'Patient/tx-upd' } },
        { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
      ]),
    });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_TRANSACTION_FAILED');
    expect(firstIssue(res.body).diagnostics).toContain('entry 2');
    expect(firstIssue(res.body).expression).toEqual(['Bundle.entry[2]']);
    expect(JSON.stringify(res.body)).toContain('gender');
    expect(await count('Patient')).toBe(before);
    expect((await fhir('Patient/tx-upd')).status).toBe(404);
  });

  it('fails with the failing entry status (404 for a missing read, 412 for If-Match)', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const missing = await fhir('', {
      method: 'POST',
      body: tx([
        { resource: patient(), request: { method: 'POST', url: 'Patient' } },
        { request: { method: 'GET', url: 'Patient/does-not-exist' } },
      ]),
    });
    expect(missing.status).toBe(404);
    const conflict = await fhir('', {
      method: 'POST',
      body: tx([{ resource: { ...created.body, active: true }, request: { method: 'PUT', url: `Patient/${created.body.id}`, ifMatch: 'W/"9"' } }]),
    });
    expect(conflict.status).toBe(412);
    expect((await fhir(`Patient/${created.body.id}`)).body.meta.versionId).toBe('1');
  });

  it('processes DELETE, POST, PUT, GET in that order', async () => {
    const doomed = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir('', {
      method: 'POST',
      body: tx([
        { request: { method: 'GET', url: `Patient/${doomed.body.id}/_history` } },
        { resource: patient({ id: 'order-put' }), request: { method: 'PUT', url: 'Patient/order-put' } },
        { request: { method: 'DELETE', url: `Patient/${doomed.body.id}` } },
      ]),
    });
    expect(res.status).toBe(200);
    const [hist, put, del] = res.body.entry;
    expect(del.response.status).toBe('204 No Content');
    expect(put.response.status).toBe('201 Created');
    // The GET ran last, so it sees the delete.
    expect(hist.resource.type).toBe('history');
    expect(hist.resource.entry[0].request.method).toBe('DELETE');
  });

  it('resolves conditional references and honours ifNoneExist', async () => {
    const existing = await fhir('Patient', { method: 'POST', body: patient({ identifier: [{ system: SYS, value: 't1' }] }) });
    const res = await fhir('', {
      method: 'POST',
      body: tx([
        {
          fullUrl: 'urn:uuid:bbbbbbbb-1111-4111-8111-111111111111',
          resource: patient({ identifier: [{ system: SYS, value: 't1' }] }),
          request: { method: 'POST', url: 'Patient', ifNoneExist: `identifier=${SYS}|t1` },
        },
        { resource: obs(`Patient?identifier=${SYS}|t1`), request: { method: 'POST', url: 'Observation' } },
        { resource: obs('urn:uuid:bbbbbbbb-1111-4111-8111-111111111111'), request: { method: 'POST', url: 'Observation' } },
      ]),
    });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('200 OK');
    expect(res.body.entry[0].resource.id).toBe(existing.body.id);
    expect(res.body.entry[1].resource.subject.reference).toBe(`Patient/${existing.body.id}`);
    expect(res.body.entry[2].resource.subject.reference).toBe(`Patient/${existing.body.id}`);
  });

  it('fails on a conditional reference that matches nothing (400) or several (412)', async () => {
    const none = await fhir('', { method: 'POST', body: tx([{ resource: obs(`Patient?identifier=${SYS}|nobody`), request: { method: 'POST', url: 'Observation' } }]) });
    expect(none.status).toBe(400);
    expect(JSON.stringify(none.body)).toContain('CLARION_UNRESOLVED_REFERENCE');
    await fhir('Patient', { method: 'POST', body: patient({ identifier: [{ system: SYS, value: 'twice' }] }) });
    await fhir('Patient', { method: 'POST', body: patient({ identifier: [{ system: SYS, value: 'twice' }] }) });
    const several = await fhir('', { method: 'POST', body: tx([{ resource: obs(`Patient?identifier=${SYS}|twice`), request: { method: 'POST', url: 'Observation' } }]) });
    expect(several.status).toBe(412);
  });

  it('conditional update and PATCH (Binary JSON Patch) inside a transaction', async () => {
    const target = await fhir('Patient', { method: 'POST', body: patient({ identifier: [{ system: SYS, value: 'tp' }] }) });
    const patchDoc = Buffer.from(JSON.stringify([{ op: 'add', path: '/active', value: true }])).toString('base64');
    const res = await fhir('', {
      method: 'POST',
      body: tx([
        { resource: patient({ identifier: [{ system: SYS, value: 'tcu' }] }), request: { method: 'PUT', url: `Patient?identifier=${SYS}|tcu` } },
        { resource: { resourceType: 'Binary', contentType: 'application/json-patch+json', data: patchDoc }, request: { method: 'PATCH', url: `Patient/${target.body.id}` } },
      ]),
    });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].response.status).toBe('201 Created');
    expect(res.body.entry[1].response.status).toBe('200 OK');
    expect(res.body.entry[1].resource.active).toBe(true);
  });

  it('accepts absolute entry URLs under the base and refuses others', async () => {
    const ok = await fhir('', { method: 'POST', body: tx([{ resource: patient(), request: { method: 'POST', url: `${server.baseUrl}/Patient` } }]) });
    expect(ok.status).toBe(200);
    const foreign = await fhir('', { method: 'POST', body: tx([{ resource: patient(), request: { method: 'POST', url: 'http://elsewhere.example/fhir/Patient' } }]) });
    expect(foreign.status).toBe(400);
    expect(firstIssue(foreign.body).expression).toEqual(['Bundle.entry[0]']);
  });

  it('Prefer: return=minimal leaves resources out of the response', async () => {
    const res = await fhir('', { method: 'POST', headers: { prefer: 'return=minimal' }, body: tx([{ resource: patient(), request: { method: 'POST', url: 'Patient' } }]) });
    expect(res.status).toBe(200);
    expect(res.body.entry[0].resource).toBeUndefined();
    expect(res.body.entry[0].response.location).toBeDefined();
  });
});

describe('Bundle shape errors', () => {
  it('rejects other Bundle types, non-Bundles and malformed entries', async () => {
    const collection = await fhir('', { method: 'POST', body: { resourceType: 'Bundle', type: 'collection' } });
    expect(collection.status).toBe(400);
    expect(firstIssue(collection.body).clarionCode).toBe('CLARION_INVALID_BUNDLE');
    expect(firstIssue(collection.body).expression).toEqual(['Bundle.type']);
    const notBundle = await fhir('', { method: 'POST', body: patient() });
    expect(notBundle.status).toBe(400);
    const form = await fhir('', { method: 'POST', body: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(415);
    const noRequest = await fhir('', { method: 'POST', body: tx([{ resource: patient() }]) });
    expect(noRequest.status).toBe(400);
    expect(JSON.stringify(noRequest.body)).toContain('Bundle.entry[0].request');
    const badMethod = await fhir('', { method: 'POST', body: tx([{ resource: patient(), request: { method: 'FETCH', url: 'Patient' } }]) });
    expect(badMethod.status).toBe(400);
    const nested = await fhir('', { method: 'POST', body: tx([{ resource: tx([]), request: { method: 'POST', url: server.baseUrl } }]) });
    expect(nested.status).toBe(400);
    expect(JSON.stringify(nested.body)).toContain('cannot be nested');
  });

  it('an empty transaction succeeds with an empty response', async () => {
    const res = await fhir('', { method: 'POST', body: tx([]) });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('transaction-response');
  });
});
