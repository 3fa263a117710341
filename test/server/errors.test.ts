import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/server/config.js';
import { registerFhirRoutes } from '../../src/server/fhir-routes.js';
import { frameworkErrorHandler } from '../../src/server/http-errors.js';
import { OperationRegistry } from '../../src/server/operations.js';
import { fhirClient, fhirFetch, firstIssue, patient, startTestServer, type TestServer } from '../support/server.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;
const BODY_LIMIT = 4096;

beforeAll(async () => {
  server = await startTestServer({ bodyLimit: BODY_LIMIT });
  fhir = fhirClient(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
});

describe('request body errors', () => {
  it('invalid JSON → 400 with the parser message', async () => {
    const res = await fhir('Patient', { method: 'POST', body: '{"resourceType": "Patient",' });
    expect(res.status).toBe(400);
    expect(res.body.resourceType).toBe('OperationOutcome');
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_INVALID_JSON');
    expect(firstIssue(res.body).diagnostics).toMatch(/not valid JSON: .+/);
  });

  it('body over the limit → 413', async () => {
    const res = await fhir('Patient', { method: 'POST', body: patient({ text: { status: 'generated', div: `<div>${'x'.repeat(BODY_LIMIT)}</div>` } }) });
    expect(res.status).toBe(413);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_BODY_TOO_LARGE');
    expect(firstIssue(res.body).diagnostics).toContain(String(BODY_LIMIT));
  });

  it('unsupported Content-Type → 415 naming it', async () => {
    for (const ct of ['text/plain', 'text/csv', 'application/octet-stream']) {
      const res = await fhir('Patient', { method: 'POST', body: '<Patient/>', headers: { 'content-type': ct } });
      expect(res.status).toBe(415);
      expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNSUPPORTED_MEDIA_TYPE');
      expect(firstIssue(res.body).diagnostics).toContain(ct);
    }
  });

  it('JSON Patch media type on create → 415', async () => {
    const res = await fhir('Patient', { method: 'POST', body: patient(), headers: { 'content-type': 'application/json-patch+json' } });
    expect(res.status).toBe(415);
  });

  it('nothing is written when a request fails', async () => {
    const before = await fhir('Patient/_history');
    await fhir('Patient', { method: 'POST', body: '{bad' });
    await fhir('Patient', { method: 'POST', body: { resourceType: 'Patient', birthDate: 'not-a-date' } });
    const after = await fhir('Patient/_history');
    expect(after.body.total ?? after.body.entry?.length ?? 0).toBe(before.body.total ?? before.body.entry?.length ?? 0);
  });
});

describe('routing errors', () => {
  it('unknown paths → 404 OperationOutcome', async () => {
    for (const path of ['Patient/1/foo', 'Patient/1/_history/1/extra', `${server.baseUrl.replace(/\/fhir$/, '')}/elsewhere`]) {
      const res = await fhir(path);
      expect(res.status, path).toBe(404);
      expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNKNOWN_ROUTE');
    }
  });

  it('GET on the base → 404 OperationOutcome', async () => {
    const res = await fhirFetch(server.baseUrl, server.baseUrl);
    expect(res.status).toBe(404);
    expect(res.body.resourceType).toBe('OperationOutcome');
  });

  it('a method the path does not allow → 405 with Allow', async () => {
    const meta = await fhir('metadata', { method: 'PUT', body: patient() });
    expect(meta.status).toBe(405);
    expect(meta.headers.get('allow')).toBe('GET');
    expect(firstIssue(meta.body).clarionCode).toBe('CLARION_METHOD_NOT_ALLOWED');
    const hist = await fhir('Patient/1/_history', { method: 'DELETE' });
    expect(hist.status).toBe(405);
    const options = await fhir('Patient', { method: 'OPTIONS' });
    expect(options.status).toBe(405);
    expect(options.headers.get('allow')).toBe('GET, POST, PUT, PATCH, DELETE');
  });

  it('unknown operations → 404 at every level', async () => {
    for (const path of ['$nope', 'Patient/$nope', 'Patient/1/$nope']) {
      const res = await fhir(path);
      expect(res.status, path).toBe(404);
      expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNKNOWN_OPERATION');
      expect(firstIssue(res.body).diagnostics).toContain('$nope');
    }
  });

  it('an unknown resource type → 404 naming it', async () => {
    const res = await fhir('Unicorn/1');
    expect(res.status).toBe(404);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_UNKNOWN_RESOURCE_TYPE');
    expect(firstIssue(res.body).diagnostics).toContain('Unicorn');
  });
});

describe('operations and unexpected errors (a server with registered operations)', () => {
  let app: FastifyInstance;
  let base: string;

  beforeAll(async () => {
    const operations = new OperationRegistry();
    operations.register({
      name: 'echo',
      levels: ['instance', 'type'],
      types: ['Patient'],
      methods: ['GET', 'POST'],
      handler: async (inv) => ({
        status: 200,
        body: { resourceType: 'Parameters', parameter: [{ name: 'where', valueString: `${inv.level}:${inv.type ?? ''}/${inv.id ?? ''}` }] },
      }),
    });
    operations.register({
      name: 'explode',
      levels: ['system'],
      methods: ['GET'],
      handler: async () => {
        throw new Error('boom (a bug)');
      },
    });
    const logger = pino({ level: 'silent' });
    const config = loadConfig({ port: 0, logLevel: 'silent' }, {});
    app = Fastify({ logger: false, frameworkErrors: frameworkErrorHandler(config.bodyLimit, logger) });
    await registerFhirRoutes(app, {
      store: server.clarion.store,
      config,
      baseUrl: () => base,
      clock: { now: () => new Date() },
      logger,
      operations,
    });
    const address = await app.listen({ host: '127.0.0.1', port: 0 });
    base = `${address}/fhir`;
  });
  afterAll(async () => {
    await app?.close();
  });

  it('dispatches registered operations at their levels', async () => {
    const inst = await fhirFetch(base, 'Patient/p1/$echo');
    expect(inst.status).toBe(200);
    expect(inst.body.parameter[0].valueString).toBe('instance:Patient/p1');
    const type = await fhirFetch(base, 'Patient/$echo', { method: 'POST', body: { resourceType: 'Parameters' } });
    expect(type.body.parameter[0].valueString).toBe('type:Patient/');
    const wrongType = await fhirFetch(base, 'Observation/$echo');
    expect(wrongType.status).toBe(404);
    const wrongMethod = await fhirFetch(base, 'Patient/$echo', { method: 'DELETE' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, POST');
  });

  it('an unexpected error → 500 OperationOutcome with the request id, without details of the bug', async () => {
    const res = await fhirFetch(base, '$explode');
    expect(res.status).toBe(500);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_INTERNAL');
    expect(firstIssue(res.body).diagnostics).toMatch(/request req-/);
    expect(res.text).not.toContain('boom');
  });

  it('a malformed URL → 400 OperationOutcome (via frameworkErrors)', async () => {
    const res = await fhirFetch(base, `${base}/Patient/%E0%A4%A`);
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_BAD_REQUEST');
  });
});
