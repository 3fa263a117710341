import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fhirClient, firstIssue, patient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;

beforeAll(async () => {
  server = await startTestServer();
  fhir = fhirClient(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
});

async function makeHistory(): Promise<string> {
  const created = await fhir('Patient', { method: 'POST', body: patient() });
  const id = created.body.id as string;
  await fhir(`Patient/${id}`, { method: 'PUT', body: { ...created.body, active: true } });
  await fhir(`Patient/${id}`, { method: 'DELETE' });
  return id;
}

describe('instance history', () => {
  it('lists versions newest first with request and response; deletes have no resource', async () => {
    const id = await makeHistory();
    const res = await fhir(`Patient/${id}/_history`);
    expect(res.status).toBe(200);
    const b = res.body;
    expect(b.resourceType).toBe('Bundle');
    expect(b.type).toBe('history');
    expect(b.total).toBe(3);
    expect(b.link[0]).toEqual({ relation: 'self', url: `${server.baseUrl}/Patient/${id}/_history` });
    const [del, upd, crt] = b.entry;
    expect(del.fullUrl).toBe(`${server.baseUrl}/Patient/${id}`);
    expect(del.resource).toBeUndefined();
    expect(del.request).toEqual({ method: 'DELETE', url: `Patient/${id}` });
    expect(del.response.status).toBe('204 No Content');
    expect(del.response.etag).toBe('W/"3"');
    expect(upd.resource.meta.versionId).toBe('2');
    expect(upd.request).toEqual({ method: 'PUT', url: `Patient/${id}` });
    expect(upd.response.status).toBe('200 OK');
    expect(crt.request).toEqual({ method: 'POST', url: 'Patient' });
    expect(crt.response.status).toBe('201 Created');
    expect(typeof crt.response.lastModified).toBe('string');
  });

  it('answers 404 for an id that never existed', async () => {
    const res = await fhir('Patient/never-existed/_history');
    expect(res.status).toBe(404);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_NOT_FOUND');
  });
});

describe('type and system history', () => {
  it('pages with _count and next links, stable under concurrent writes', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await fhir('Observation', { method: 'POST', body: { resourceType: 'Observation', status: 'final', code: { text: `o${i}` } } });
      ids.push(r.body.id);
    }
    const first = await fhir('Observation/_history?_count=2');
    expect(first.status).toBe(200);
    expect(first.body.entry.map((e: any) => e.resource.id)).toEqual([ids[4], ids[3]]);
    const next = first.body.link.find((l: any) => l.relation === 'next').url as string;
    expect(next).toContain('_count=2');
    expect(next).toContain('_cursor=');

    // A write between pages must not shift the next page.
    await fhir('Observation', { method: 'POST', body: { resourceType: 'Observation', status: 'final', code: { text: 'late' } } });
    const second = await fhir(next);
    expect(second.body.entry.map((e: any) => e.resource.id)).toEqual([ids[2], ids[1]]);
    const third = await fhir(second.body.link.find((l: any) => l.relation === 'next').url);
    expect(third.body.entry.map((e: any) => e.resource.id)).toEqual([ids[0]]);
    expect(third.body.link.find((l: any) => l.relation === 'next')).toBeUndefined();
  });

  it('filters by _since', async () => {
    const before = await fhir('Encounter', { method: 'POST', body: { resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' } } });
    const since = before.body.meta.lastUpdated as string;
    const all = await fhir(`Encounter/_history?_since=${encodeURIComponent(since)}`);
    expect(all.body.entry.map((e: any) => e.resource.id)).toContain(before.body.id);
    const future = await fhir(`Encounter/_history?_since=${encodeURIComponent('2999-01-01T00:00:00Z')}`);
    expect(future.status).toBe(200);
    expect(future.body.entry).toBeUndefined();
    expect(future.body.total).toBe(0);
  });

  it('rejects an invalid _since, _count and _cursor', async () => {
    const since = await fhir('_history?_since=yesterday');
    expect(since.status).toBe(400);
    expect(firstIssue(since.body).clarionCode).toBe('CLARION_INVALID_PARAMETER');
    expect(firstIssue(since.body).diagnostics).toContain('_since');
    const dateOnly = await fhir('_history?_since=2020-01-01');
    expect(dateOnly.status).toBe(400);
    const count = await fhir('_history?_count=-1');
    expect(count.status).toBe(400);
    expect(firstIssue(count.body).diagnostics).toContain('_count');
    const cursor = await fhir('_history?_cursor=garbage');
    expect(cursor.status).toBe(400);
    expect(firstIssue(cursor.body).clarionCode).toBe('CLARION_INVALID_CURSOR');
  });

  it('system history includes several types', async () => {
    const res = await fhir('_history?_count=100');
    expect(res.status).toBe(200);
    const types = new Set(res.body.entry.map((e: any) => e.fullUrl.split('/').slice(-2, -1)[0]));
    expect(types.has('Patient') || types.has('Observation')).toBe(true);
    expect(types.size).toBeGreaterThan(1);
  });
});
