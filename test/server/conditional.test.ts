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

const withMrn = (value: string, extra: Record<string, unknown> = {}) => patient({ identifier: [{ system: SYS, value }], ...extra });

describe('conditional create (If-None-Exist)', () => {
  it('creates when nothing matches, returns the match (200) when one does, 412 when several do', async () => {
    const first = await fhir('Patient', { method: 'POST', body: withMrn('c1'), headers: { 'if-none-exist': `identifier=${SYS}|c1` } });
    expect(first.status).toBe(201);
    const second = await fhir('Patient', { method: 'POST', body: withMrn('c1'), headers: { 'if-none-exist': `identifier=${SYS}|c1` } });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.meta.versionId).toBe('1');

    await fhir('Patient', { method: 'POST', body: withMrn('dup') });
    await fhir('Patient', { method: 'POST', body: withMrn('dup') });
    const several = await fhir('Patient', { method: 'POST', body: withMrn('dup'), headers: { 'if-none-exist': `identifier=${SYS}|dup` } });
    expect(several.status).toBe(412);
    expect(firstIssue(several.body).clarionCode).toBe('CLARION_MULTIPLE_MATCHES');
  });

  it('concurrent conditional creates with the same criteria create exactly one resource', async () => {
    const results = await Promise.all(
      Array.from({ length: 6 }, () => fhir('Patient', { method: 'POST', body: withMrn('race'), headers: { 'if-none-exist': `identifier=${SYS}|race` } })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
    expect(new Set(results.map((r) => r.body.id)).size).toBe(1);
    const search = await fhir(`Patient?identifier=${SYS}|race&_summary=count`);
    expect(search.body.total).toBe(1);
  });

  it('accepts the criteria with a type prefix, and rejects unknown parameters (strict)', async () => {
    const res = await fhir('Patient', { method: 'POST', body: withMrn('c2'), headers: { 'if-none-exist': `Patient?identifier=${SYS}|c2` } });
    expect(res.status).toBe(201);
    const bad = await fhir('Patient', { method: 'POST', body: withMrn('c3'), headers: { 'if-none-exist': 'nonsense=1' } });
    expect(bad.status).toBe(400);
    expect(firstIssue(bad.body).diagnostics).toContain('nonsense');
  });
});

describe('conditional update', () => {
  it('creates when nothing matches (201), updates the one match (200), 412 on several', async () => {
    const created = await fhir(`Patient?identifier=${SYS}|u1`, { method: 'PUT', body: withMrn('u1') });
    expect(created.status).toBe(201);
    const updated = await fhir(`Patient?identifier=${SYS}|u1`, { method: 'PUT', body: withMrn('u1', { active: true }) });
    expect(updated.status).toBe(200);
    expect(updated.body.id).toBe(created.body.id);
    expect(updated.body.meta.versionId).toBe('2');

    await fhir('Patient', { method: 'POST', body: withMrn('u2') });
    await fhir('Patient', { method: 'POST', body: withMrn('u2') });
    const several = await fhir(`Patient?identifier=${SYS}|u2`, { method: 'PUT', body: withMrn('u2') });
    expect(several.status).toBe(412);
  });

  it('rejects a body id that differs from the match, and missing criteria', async () => {
    await fhir(`Patient?identifier=${SYS}|u3`, { method: 'PUT', body: withMrn('u3') });
    const mismatch = await fhir(`Patient?identifier=${SYS}|u3`, { method: 'PUT', body: withMrn('u3', { id: 'other-id' }) });
    expect(mismatch.status).toBe(400);
    expect(firstIssue(mismatch.body).clarionCode).toBe('CLARION_CONDITIONAL_ID_MISMATCH');
    const noCriteria = await fhir('Patient', { method: 'PUT', body: withMrn('u4') });
    expect(noCriteria.status).toBe(400);
    expect(firstIssue(noCriteria.body).clarionCode).toBe('CLARION_CONDITIONAL_NO_CRITERIA');
  });
});

describe('conditional delete', () => {
  it('deletes the one match (204); no match → 204; several → 412', async () => {
    const created = await fhir('Patient', { method: 'POST', body: withMrn('d1') });
    const del = await fhir(`Patient?identifier=${SYS}|d1`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect((await fhir(`Patient/${created.body.id}`)).status).toBe(410);
    const none = await fhir(`Patient?identifier=${SYS}|nothing`, { method: 'DELETE' });
    expect(none.status).toBe(204);
    await fhir('Patient', { method: 'POST', body: withMrn('d2') });
    await fhir('Patient', { method: 'POST', body: withMrn('d2') });
    const several = await fhir(`Patient?identifier=${SYS}|d2`, { method: 'DELETE' });
    expect(several.status).toBe(412);
  });

  it('requires criteria', async () => {
    const res = await fhir('Patient', { method: 'DELETE' });
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_CONDITIONAL_NO_CRITERIA');
  });
});

describe('conditional patch', () => {
  it('patches the one match; none → 404', async () => {
    const created = await fhir('Patient', { method: 'POST', body: withMrn('p1') });
    const res = await fhir(`Patient?identifier=${SYS}|p1`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: [{ op: 'add', path: '/active', value: true }],
    });
    expect(res.status).toBe(200);
    expect(res.body.id).toBe(created.body.id);
    expect(res.body.active).toBe(true);
    const none = await fhir(`Patient?identifier=${SYS}|nobody`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: [{ op: 'add', path: '/active', value: true }],
    });
    expect(none.status).toBe(404);
    expect(firstIssue(none.body).clarionCode).toBe('CLARION_CONDITIONAL_NO_MATCH');
  });
});
