import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirClient, firstIssue, patient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;
let id: string;

beforeAll(async () => {
  server = await startTestServer();
  fhir = fhirClient(server.baseUrl);
  id = (await fhir('Patient', { method: 'POST', body: patient() })).body.id;
});
afterAll(async () => {
  await server?.close();
});

describe('response format', () => {
  it('defaults to application/fhir+json', async () => {
    const res = await fhir(`Patient/${id}`);
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
  });

  it('accepts JSON Accept values and wildcards', async () => {
    for (const accept of ['application/json', 'application/fhir+json', 'application/fhir+json;q=0.9', '*/*', 'application/*', 'application/fhir+xml;q=0.5, */*', 'application/fhir+xml;q=0, */*;q=0.1']) {
      const res = await fhir(`Patient/${id}`, { headers: { accept } });
      expect(res.status, accept).toBe(200);
      expect(res.body.id).toBe(id);
    }
  });

  it('_format=json and application/fhir+json work; an unknown format → 406', async () => {
    expect((await fhir(`Patient/${id}?_format=json`)).status).toBe(200);
    expect((await fhir(`Patient/${id}?_format=${encodeURIComponent('application/fhir+json')}`)).status).toBe(200);
    expect((await fhir(`Patient/${id}?_format=application/fhir+json`)).status).toBe(200);
    const html = await fhir(`Patient/${id}?_format=html`);
    expect(html.status).toBe(406);
    expect(html.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    expect(firstIssue(html.body).clarionCode).toBe('CLARION_NOT_ACCEPTABLE');
    expect((await fhir(`Patient/${id}`, { headers: { accept: 'text/html' } })).status).toBe(406);
  });

  it('XML by _format, by Accept (also a browser\'s, which ranks application/xml above */*), _format winning', async () => {
    const cases: [string, Record<string, string>][] = [
      ['?_format=xml', {}],
      ['?_format=application/fhir+xml', {}],
      [`?_format=${encodeURIComponent('application/fhir+xml')}`, {}],
      ['?_format=text/xml', { accept: 'application/fhir+json' }],
      ['', { accept: 'application/fhir+xml' }],
      ['', { accept: 'application/xml' }],
      ['', { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' }],
      ['', { accept: '*/*, application/fhir+xml' }],
    ];
    for (const [query, headers] of cases) {
      const res = await fhir(`Patient/${id}${query}`, { headers });
      expect(res.status, query + JSON.stringify(headers)).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/fhir+xml; charset=utf-8');
      expect(res.text).toContain(`<Patient xmlns="http://hl7.org/fhir"><id value="${id}"/>`);
    }
    const json = await fhir(`Patient/${id}?_format=json`, { headers: { accept: 'application/fhir+xml' } });
    expect(json.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
  });

  it('does not write when the response format is unacceptable', async () => {
    const res = await fhir('Patient/not-written', { method: 'PUT', body: patient({ id: 'not-written' }), headers: { accept: 'text/html' } });
    expect(res.status).toBe(406);
    expect((await fhir('Patient/not-written')).status).toBe(404);
  });

  it('_pretty=true indents the JSON', async () => {
    const pretty = await fhir(`Patient/${id}?_pretty=true`);
    expect(pretty.text).toContain('\n  "resourceType": "Patient"');
    const compact = await fhir(`Patient/${id}`);
    expect(compact.text).not.toContain('\n');
  });

  it('_format and _pretty are kept out of search criteria', async () => {
    const res = await fhir('Patient?_format=json&_pretty=true', { headers: { prefer: 'handling=strict' } });
    expect(res.status).toBe(200);
  });
});
