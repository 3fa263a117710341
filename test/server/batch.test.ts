import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirClient, patient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;

beforeAll(async () => {
  server = await startTestServer();
  fhir = fhirClient(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
});

describe('batch', () => {
  it('processes entries independently and reports each outcome', async () => {
    const existing = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: patient({ gender: 'female' }), request: { method: 'POST', url: 'Patient' } },
          { resource: { resourceType: 'Patient', gender: 'robot' }, request: { method: 'POST', url: 'Patient' } },
          { request: { method: 'GET', url: `Patient/${existing.body.id}` } },
          { request: { method: 'GET', url: 'Patient/missing' } },
          { request: { method: 'GET', url: 'Patient?gender=female' } },
          { request: { method: 'DELETE', url: `Patient/${existing.body.id}` } },
          { request: { method: 'GET', url: 'Unicorn/1' } },
          { resource: patient(), request: { method: 'POST' } },
        ],
      },
    });
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('batch-response');
    const e = res.body.entry;
    expect(e).toHaveLength(8);
    expect(e[0].response.status).toBe('201 Created');
    expect(e[0].resource.gender).toBe('female');
    expect(e[1].response.status).toBe('400 Bad Request');
    expect(e[1].response.outcome.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(e[1].response.outcome)).toContain('gender');
    expect(e[2].response.status).toBe('200 OK');
    expect(e[2].resource.id).toBe(existing.body.id);
    expect(e[2].response.etag).toBe('W/"1"');
    expect(e[3].response.status).toBe('404 Not Found');
    expect(e[4].response.status).toBe('200 OK');
    expect(e[4].resource.type).toBe('searchset');
    expect(e[4].resource.entry.some((x: any) => x.resource.id === e[0].resource.id)).toBe(true);
    expect(e[5].response.status).toBe('204 No Content');
    expect(e[6].response.status).toBe('404 Not Found');
    expect(e[7].response.status).toBe('400 Bad Request');

    // The failing entry did not stop the others: the created patient exists.
    expect((await fhir(`Patient/${e[0].resource.id}`)).status).toBe(200);
  });

  it('applies If-Match per entry', async () => {
    const p = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir('', {
      method: 'POST',
      body: {
        resourceType: 'Bundle',
        type: 'batch',
        entry: [
          { resource: { ...p.body, active: true }, request: { method: 'PUT', url: `Patient/${p.body.id}`, ifMatch: 'W/"2"' } },
          { resource: { ...p.body, active: false }, request: { method: 'PUT', url: `Patient/${p.body.id}`, ifMatch: 'W/"1"' } },
        ],
      },
    });
    expect(res.body.entry[0].response.status).toBe('412 Precondition Failed');
    expect(res.body.entry[1].response.status).toBe('200 OK');
    expect(res.body.entry[1].response.etag).toBe('W/"2"');
  });
});
