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

describe('create', () => {
  it('creates with a server id and returns 201, Location, ETag, Last-Modified and the resource', async () => {
    const res = await fhir('Patient', { method: 'POST', body: patient({ id: 'ignored-client-id' }) });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    expect(res.body.resourceType).toBe('Patient');
    expect(res.body.id).not.toBe('ignored-client-id');
    expect(res.body.meta.versionId).toBe('1');
    expect(res.headers.get('location')).toBe(`${server.baseUrl}/Patient/${res.body.id}/_history/1`);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(new Date(res.headers.get('last-modified')!).getTime()).toBe(Math.floor(new Date(res.body.meta.lastUpdated).getTime() / 1000) * 1000);
  });

  it('honours Prefer: return=minimal and return=OperationOutcome', async () => {
    const minimal = await fhir('Patient', { method: 'POST', body: patient(), headers: { prefer: 'return=minimal' } });
    expect(minimal.status).toBe(201);
    expect(minimal.text).toBe('');
    expect(minimal.headers.get('location')).toMatch(/\/Patient\/[^/]+\/_history\/1$/);

    const oo = await fhir('Patient', { method: 'POST', body: patient(), headers: { prefer: 'return=OperationOutcome' } });
    expect(oo.status).toBe(201);
    expect(oo.body.resourceType).toBe('OperationOutcome');
    expect(oo.body.issue[0].severity).toBe('information');
  });

  it('accepts application/json too', async () => {
    const res = await fhir('Patient', { method: 'POST', body: patient(), headers: { 'content-type': 'application/json; charset=utf-8' } });
    expect(res.status).toBe(201);
  });

  it('rejects a body whose resourceType differs from the URL', async () => {
    const res = await fhir('Patient', { method: 'POST', body: { resourceType: 'Observation', status: 'final', code: { text: 'x' } } });
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_RESOURCE_TYPE_MISMATCH');
    expect(firstIssue(res.body).expression).toEqual(['resourceType']);
  });

  it('rejects an invalid resource with the offending element named', async () => {
    const res = await fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', gender: 'robot' } });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(JSON.stringify(res.body.issue)).toContain('gender');
  });

  it('rejects an empty body and a non-object body', async () => {
    const empty = await fhir('Patient', { method: 'POST', body: '' , headers: { 'content-type': 'application/fhir+json' } });
    expect(empty.status).toBe(400);
    expect(firstIssue(empty.body).clarionCode).toBe('CLARION_NOT_A_RESOURCE');
    const arr = await fhir('Patient', { method: 'POST', body: '[1,2]' });
    expect(arr.status).toBe(400);
    expect(firstIssue(arr.body).clarionCode).toBe('CLARION_NOT_A_RESOURCE');
  });

  it('answers 404 for an unknown resource type', async () => {
    const res = await fhir('Patientx', { method: 'POST', body: patient() });
    expect(res.status).toBe(404);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNKNOWN_RESOURCE_TYPE');
    expect(firstIssue(res.body).diagnostics).toContain('Patientx');
  });
});

describe('read and vread', () => {
  it('reads the current version with ETag and Last-Modified', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir(`Patient/${created.body.id}`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual(created.body);
    expect(res.headers.get('etag')).toBe('W/"1"');
    expect(res.headers.get('last-modified')).toBeTruthy();
  });

  it('answers 304 when If-None-Match names the current version', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir(`Patient/${created.body.id}`, { headers: { 'if-none-match': 'W/"1"' } });
    expect(res.status).toBe(304);
    const changed = await fhir(`Patient/${created.body.id}`, { headers: { 'if-none-match': 'W/"7"' } });
    expect(changed.status).toBe(200);
  });

  it('answers 404 for an unknown id and 400 for a malformed id', async () => {
    const unknown = await fhir('Patient/does-not-exist');
    expect(unknown.status).toBe(404);
    expect(firstIssue(unknown.body).clarionCode).toBe('CLARION_NOT_FOUND');
    const bad = await fhir('Patient/bad_id!');
    expect(bad.status).toBe(400);
    expect(firstIssue(bad.body).clarionCode).toBe('CLARION_INVALID_ID');
    expect(firstIssue(bad.body).expression).toEqual(['Patient.id']);
    const long = await fhir(`Patient/${'a'.repeat(65)}`);
    expect(long.status).toBe(400);
    // Regression (R4 examples: a SearchParameter id of 67 characters): a PUT names the element too.
    const longPut = await fhir(`Patient/${'a'.repeat(65)}`, { method: 'PUT', body: { resourceType: 'Patient', id: 'a'.repeat(65) } });
    expect(longPut.status).toBe(400);
    expect(firstIssue(longPut.body)).toMatchObject({ clarionCode: 'CLARION_INVALID_ID', expression: ['Patient.id'] });
  });

  it('vreads each version; unknown version → 404', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    await fhir(`Patient/${id}`, { method: 'PUT', body: { ...created.body, gender: 'female' } });
    const v1 = await fhir(`Patient/${id}/_history/1`);
    expect(v1.status).toBe(200);
    expect(v1.body.gender).toBeUndefined();
    expect(v1.headers.get('etag')).toBe('W/"1"');
    const v2 = await fhir(`Patient/${id}/_history/2`);
    expect(v2.body.gender).toBe('female');
    const v9 = await fhir(`Patient/${id}/_history/9`);
    expect(v9.status).toBe(404);
    expect(firstIssue(v9.body).clarionCode).toBe('CLARION_VERSION_NOT_FOUND');
  });

  it('supports _elements and _summary on read (SUBSETTED), rejecting bad values', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient({ gender: 'female' }) });
    const res = await fhir(`Patient/${created.body.id}?_elements=gender`);
    expect(res.status).toBe(200);
    expect(res.body.gender).toBe('female');
    expect(res.body.name).toBeUndefined();
    expect(res.body.meta.tag).toEqual([expect.objectContaining({ code: 'SUBSETTED' })]);
    const bad = await fhir(`Patient/${created.body.id}?_summary=bogus`);
    expect(bad.status).toBe(400);
    expect(firstIssue(bad.body).diagnostics).toContain('_summary');
  });

  it('HEAD answers like GET without a body', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir(`Patient/${created.body.id}`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.text).toBe('');
    expect(res.headers.get('etag')).toBe('W/"1"');
  });
});

describe('update', () => {
  it('updates (200, version 2) and creates on a new id (201)', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    const upd = await fhir(`Patient/${id}`, { method: 'PUT', body: { ...created.body, active: true } });
    expect(upd.status).toBe(200);
    expect(upd.body.meta.versionId).toBe('2');
    expect(upd.headers.get('etag')).toBe('W/"2"');

    const asCreate = await fhir('Patient/client-chosen-1', { method: 'PUT', body: patient({ id: 'client-chosen-1' }) });
    expect(asCreate.status).toBe(201);
    expect(asCreate.headers.get('location')).toBe(`${server.baseUrl}/Patient/client-chosen-1/_history/1`);
  });

  it('rejects an id mismatch and a missing id', async () => {
    const mismatch = await fhir('Patient/a1', { method: 'PUT', body: patient({ id: 'b2' }) });
    expect(mismatch.status).toBe(400);
    expect(firstIssue(mismatch.body).clarionCode).toBe('CLARION_ID_MISMATCH');
    expect(firstIssue(mismatch.body).expression).toEqual(['Patient.id']);
    const missing = await fhir('Patient/a1', { method: 'PUT', body: patient() });
    expect(missing.status).toBe(400);
    expect(firstIssue(missing.body).clarionCode).toBe('CLARION_MISSING_ID');
  });

  it('applies If-Match: 412 on a stale version, 400 when malformed, 200 when current', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    const stale = await fhir(`Patient/${id}`, { method: 'PUT', body: created.body, headers: { 'if-match': 'W/"5"' } });
    expect(stale.status).toBe(412);
    expect(firstIssue(stale.body).clarionCode).toBe('CLARION_VERSION_CONFLICT');
    const malformed = await fhir(`Patient/${id}`, { method: 'PUT', body: created.body, headers: { 'if-match': 'version-1' } });
    expect(malformed.status).toBe(400);
    expect(firstIssue(malformed.body).clarionCode).toBe('CLARION_INVALID_IF_MATCH');
    const ok = await fhir(`Patient/${id}`, { method: 'PUT', body: created.body, headers: { 'if-match': 'W/"1"' } });
    expect(ok.status).toBe(200);
    expect(ok.body.meta.versionId).toBe('2');
  });
});

describe('delete', () => {
  it('deletes (204), then read → 410, delete again → 204, unknown → 404', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    const del = await fhir(`Patient/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    const gone = await fhir(`Patient/${id}`);
    expect(gone.status).toBe(410);
    expect(firstIssue(gone.body).clarionCode).toBe('CLARION_GONE');
    const again = await fhir(`Patient/${id}`, { method: 'DELETE' });
    expect(again.status).toBe(204);
    const unknown = await fhir('Patient/never-was', { method: 'DELETE' });
    expect(unknown.status).toBe(404);
  });

  it('update after delete re-creates the resource (201)', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    await fhir(`Patient/${id}`, { method: 'DELETE' });
    const res = await fhir(`Patient/${id}`, { method: 'PUT', body: patient({ id }) });
    expect(res.status).toBe(201);
    expect(res.body.meta.versionId).toBe('3');
  });
});

describe('patch', () => {
  const jsonPatch = { 'content-type': 'application/json-patch+json' };

  it('applies a JSON Patch and returns the new version', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    const res = await fhir(`Patient/${id}`, { method: 'PATCH', headers: jsonPatch, body: [{ op: 'add', path: '/active', value: true }] });
    expect(res.status).toBe(200);
    expect(res.body.active).toBe(true);
    expect(res.body.meta.versionId).toBe('2');
    expect(res.headers.get('etag')).toBe('W/"2"');
    const hist = await fhir(`Patient/${id}/_history`);
    expect(hist.body.entry[0].request.method).toBe('PATCH');
  });

  it('honours If-Match on patch', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const res = await fhir(`Patient/${created.body.id}`, { method: 'PATCH', headers: { ...jsonPatch, 'if-match': 'W/"3"' }, body: [{ op: 'add', path: '/active', value: true }] });
    expect(res.status).toBe(412);
  });

  it('rejects a patch that makes the resource invalid, or changes its id, and wrong media types', async () => {
    const created = await fhir('Patient', { method: 'POST', body: patient() });
    const id = created.body.id;
    const invalid = await fhir(`Patient/${id}`, { method: 'PATCH', headers: jsonPatch, body: [{ op: 'add', path: '/gender', value: 'robot' }] });
    expect(invalid.status).toBe(400);
    expect(JSON.stringify(invalid.body)).toContain('gender');
    const idChange = await fhir(`Patient/${id}`, { method: 'PATCH', headers: jsonPatch, body: [{ op: 'replace', path: '/id', value: 'other' }] });
    expect(idChange.status).toBe(400);
    const badOp = await fhir(`Patient/${id}`, { method: 'PATCH', headers: jsonPatch, body: [{ op: 'frobnicate', path: '/x' }] });
    expect(badOp.status).toBe(400);
    expect(firstIssue(badOp.body).clarionCode).toBe('CLARION_INVALID_PATCH');
    const asFhir = await fhir(`Patient/${id}`, { method: 'PATCH', body: [{ op: 'add', path: '/active', value: true }] });
    expect(asFhir.status).toBe(415);
    expect(firstIssue(asFhir.body).clarionCode).toBe('CLARION_UNSUPPORTED_MEDIA_TYPE');
    const unchanged = await fhir(`Patient/${id}`);
    expect(unchanged.body.meta.versionId).toBe('1');
  });

  it('answers 404 when patching an unknown resource', async () => {
    const res = await fhir('Patient/nope', { method: 'PATCH', headers: jsonPatch, body: [{ op: 'add', path: '/active', value: true }] });
    expect(res.status).toBe(404);
  });
});
