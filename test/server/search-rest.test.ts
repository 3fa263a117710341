import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirClient, firstIssue, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;

beforeAll(async () => {
  server = await startTestServer();
  fhir = fhirClient(server.baseUrl);
  for (const [family, gender] of [['Alpha', 'female'], ['Beta', 'male'], ['Gamma', 'female'], ['Delta', 'female']]) {
    await fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', name: [{ family }], gender, text: { status: 'generated', div: `<div xmlns="http://www.w3.org/1999/xhtml">${family}</div>` } } });
  }
});
afterAll(async () => {
  await server?.close();
});

describe('search', () => {
  it('returns a searchset with total, self link and match entries', async () => {
    const res = await fhir('Patient?gender=female');
    expect(res.status).toBe(200);
    expect(res.body.type).toBe('searchset');
    expect(res.body.entry).toHaveLength(3);
    for (const e of res.body.entry) {
      expect(e.search.mode).toBe('match');
      expect(e.fullUrl).toBe(`${server.baseUrl}/Patient/${e.resource.id}`);
    }
    expect(res.body.link[0]).toEqual({ relation: 'self', url: `${server.baseUrl}/Patient?gender=female` });
  });

  it('pages with _count; next/previous links carry the cursor and the parameters', async () => {
    const first = await fhir('Patient?gender=female&_count=2&_total=accurate');
    expect(first.body.entry).toHaveLength(2);
    expect(first.body.total).toBe(3);
    const next = first.body.link.find((l: any) => l.relation === 'next');
    expect(next.url).toContain('gender=female');
    expect(next.url).toContain('_count=2');
    expect(next.url).toContain('_cursor=');
    const second = await fhir(next.url);
    expect(second.status).toBe(200);
    expect(second.body.entry).toHaveLength(1);
    const seen = new Set([...first.body.entry, ...second.body.entry].map((e: any) => e.resource.id));
    expect(seen.size).toBe(3);
  });

  it('rejects a malformed paging cursor with 400', async () => {
    const res = await fhir('Patient?gender=female&_cursor=not-a-cursor');
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_INVALID_CURSOR');
  });

  it('POST _search with a form body merges with URL parameters', async () => {
    const res = await fhir('Patient/_search?gender=female', {
      method: 'POST',
      body: 'family=Gamma',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(200);
    expect(res.body.entry).toHaveLength(1);
    expect(res.body.entry[0].resource.name[0].family).toBe('Gamma');
    expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?gender=female&family=Gamma`);
  });

  it('POST _search refuses a JSON body', async () => {
    const res = await fhir('Patient/_search', { method: 'POST', body: { gender: 'female' } });
    expect(res.status).toBe(415);
  });

  it('lenient handling ignores unknown parameters, reports them and leaves them out of the self link', async () => {
    const res = await fhir('Patient?gender=male&nonsense=1');
    expect(res.status).toBe(200);
    const matches = res.body.entry.filter((e: any) => e.search.mode === 'match');
    expect(matches).toHaveLength(1);
    const outcome = res.body.entry.find((e: any) => e.search.mode === 'outcome');
    expect(outcome.resource.resourceType).toBe('OperationOutcome');
    expect(outcome.resource.issue[0].diagnostics).toContain('nonsense');
    expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?gender=male`);
  });

  it('strict handling rejects unknown parameters', async () => {
    const res = await fhir('Patient?nonsense=1', { headers: { prefer: 'handling=strict' } });
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNKNOWN_SEARCH_PARAMETER');
    expect(firstIssue(res.body).diagnostics).toContain('nonsense');
  });

  it('rejects invalid values with 400', async () => {
    const res = await fhir('Patient?birthdate=notadate');
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).diagnostics).toContain('birthdate');
    const count = await fhir('Patient?_count=abc');
    expect(count.status).toBe(400);
  });

  it('_summary=count returns only the total', async () => {
    const res = await fhir('Patient?gender=female&_summary=count');
    expect(res.status).toBe(200);
    expect(res.body.total).toBe(3);
    expect(res.body.entry).toBeUndefined();
  });

  it('_elements trims resources and tags them SUBSETTED', async () => {
    const res = await fhir('Patient?gender=male&_elements=gender');
    const r = res.body.entry[0].resource;
    expect(r.gender).toBe('male');
    expect(r.name).toBeUndefined();
    expect(r.id).toBeDefined();
    expect(r.meta.tag.some((t: any) => t.code === 'SUBSETTED')).toBe(true);
  });

  it('_summary=text keeps the narrative only', async () => {
    const res = await fhir('Patient?gender=male&_summary=text');
    const r = res.body.entry[0].resource;
    expect(r.text).toBeDefined();
    expect(r.name).toBeUndefined();
  });

  it('keeps the order of repeated parameters in links', async () => {
    const res = await fhir('Patient?family=Alpha&gender=female&family=Al');
    expect(res.status).toBe(200);
    expect(res.body.link[0].url).toBe(`${server.baseUrl}/Patient?family=Alpha&gender=female&family=Al`);
  });

  it('answers 404 for an unknown type', async () => {
    const res = await fhir('Nonsense?x=1');
    expect(res.status).toBe(404);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNKNOWN_RESOURCE_TYPE');
  });

  it('returns an empty searchset when nothing matches', async () => {
    const res = await fhir('Patient?family=Nobody');
    expect(res.status).toBe(200);
    expect(res.body.entry).toBeUndefined();
  });
});
