import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirClient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;

beforeAll(async () => {
  server = await startTestServer();
  fhir = fhirClient(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
});

describe('GET metadata', () => {
  it('returns the CapabilityStatement for this base URL, with search parameters', async () => {
    const res = await fhir('metadata');
    expect(res.status).toBe(200);
    expect(res.body.resourceType).toBe('CapabilityStatement');
    expect(res.body.fhirVersion).toBe('4.0.1');
    expect(res.body.implementation?.url ?? res.body.url ?? '').toContain(server.baseUrl.replace(/\/fhir$/, ''));
    const rest = res.body.rest[0];
    const patientRes = rest.resource.find((r: any) => r.type === 'Patient');
    expect(patientRes.searchParam.some((p: any) => p.name === 'family' && p.type === 'string')).toBe(true);
    expect(res.body.software.name).toBe('Clarion');
  });

  it('is stable between calls (built once)', async () => {
    const a = await fhir('metadata');
    const b = await fhir('metadata');
    expect(b.text).toBe(a.text);
  });
});
