import type { Bundle, CapabilityStatement, Patient, Resource } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resourceToXml, xmlToResource } from '../../src/fhir/xml/fhir-xml.js';
import { fhirClient, firstIssue, startTestServer, type TestServer } from '../support/server.js';

const XML_CT = 'application/fhir+xml; charset=utf-8';
const NS = 'xmlns="http://hl7.org/fhir"';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;

beforeAll(async () => {
  server = await startTestServer({}, { background: false });
  fhir = fhirClient(server.baseUrl);
});
afterAll(async () => {
  await server?.close();
});

/** A request with an XML body (Content-Type application/fhir+xml unless given) asking for XML back. */
async function xmlRequest(path: string, init: { method?: string; body?: string; headers?: Record<string, string> } = {}) {
  const res = await fhir(path, {
    method: init.method ?? 'GET',
    ...(init.body !== undefined ? { body: init.body } : {}),
    headers: { accept: 'application/fhir+xml', ...(init.body !== undefined ? { 'content-type': 'application/fhir+xml' } : {}), ...init.headers },
  });
  return { ...res, resource: res.text === '' ? undefined : xmlToResource(res.text) };
}

function outcomeOf(resource: Resource | undefined): ReturnType<typeof firstIssue> {
  expect(resource?.resourceType).toBe('OperationOutcome');
  return firstIssue(resource);
}

const patientXml = (family: string, extra = '') =>
  `<?xml version="1.0" encoding="UTF-8"?>\n<Patient ${NS}>\n  <text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">\n    <p>${family}</p>\n  </div></text>\n` +
  `  <identifier><system value="urn:mrn"/><value value="${family}-1"/></identifier>\n  <name><family value="${family}"/><given value="Peter"/></name>\n  <gender value="male"/>${extra}\n</Patient>`;

describe('CRUD with XML in and out', () => {
  let id: string;

  it('create: XML body, XML answer with Location and ETag', async () => {
    const res = await xmlRequest('Patient', { method: 'POST', body: patientXml('Chalmers', '<birthDate value="1974-12-25"/>') });
    expect(res.status).toBe(201);
    expect(res.headers.get('content-type')).toBe(XML_CT);
    expect(res.headers.get('etag')).toBe('W/"1"');
    const created = res.resource as Patient;
    id = created.id as string;
    expect(res.headers.get('location')).toBe(`${server.baseUrl}/Patient/${id}/_history/1`);
    expect(created).toMatchObject({ resourceType: 'Patient', name: [{ family: 'Chalmers', given: ['Peter'] }], gender: 'male', birthDate: '1974-12-25' });
    expect(created.text?.div).toBe('<div xmlns="http://www.w3.org/1999/xhtml">\n    <p>Chalmers</p>\n  </div>');
    expect(res.text.startsWith(`<?xml version="1.0" encoding="UTF-8"?><Patient ${NS}><id value="${id}"/><meta><versionId value="1"/>`)).toBe(true);
  });

  it('what was sent in XML reads back identically in JSON', async () => {
    const json = await fhir<Patient>(`Patient/${id}`);
    expect(json.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    const xml = await xmlRequest(`Patient/${id}`);
    expect(xml.resource).toEqual(json.body);
  });

  it('application/xml works as request and response type; JSON answers when Accept asks for it', async () => {
    const res = await fhir<Patient>('Patient', { method: 'POST', body: patientXml('Plain'), headers: { 'content-type': 'application/xml', accept: 'application/fhir+json' } });
    expect(res.status).toBe(201);
    expect(res.body.name?.[0].family).toBe('Plain');
    const read = await fhir(`Patient/${res.body.id}`, { headers: { accept: 'application/xml' } });
    expect(read.headers.get('content-type')).toBe(XML_CT);
  });

  it('update: XML body with If-Match, XML answer; vread of both versions', async () => {
    const res = await xmlRequest(`Patient/${id}`, { method: 'PUT', body: patientXml('Chalmers', '<active value="false"/>').replace(`<Patient ${NS}>`, `<Patient ${NS}><id value="${id}"/>`), headers: { 'if-match': 'W/"1"' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('etag')).toBe('W/"2"');
    expect(res.resource).toMatchObject({ id, active: false, meta: { versionId: '2' } });
    expect((await xmlRequest(`Patient/${id}/_history/1`)).resource).not.toHaveProperty('active');
    const stale = await xmlRequest(`Patient/${id}`, { method: 'PUT', body: patientXml('Chalmers').replace(`<Patient ${NS}>`, `<Patient ${NS}><id value="${id}"/>`), headers: { 'if-match': 'W/"1"' } });
    expect(stale.status).toBe(412);
    expect(stale.headers.get('content-type')).toBe(XML_CT);
    expect(outcomeOf(stale.resource).clarionCode).toBe('CLARION_VERSION_CONFLICT');
  });

  it('search (GET and POST _search) and history answer XML Bundles', async () => {
    const search = await xmlRequest('Patient?family=chalmers&_format=xml');
    expect(search.status).toBe(200);
    const bundle = search.resource as Bundle;
    expect(bundle).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 1 });
    expect(bundle.entry?.[0]).toMatchObject({ resource: { resourceType: 'Patient', id }, search: { mode: 'match' } });
    expect(bundle.link?.[0].relation).toBe('self');
    const posted = await fhir('Patient/_search', { method: 'POST', body: 'identifier=urn:mrn|Chalmers-1', headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/fhir+xml' } });
    expect((xmlToResource(posted.text) as Bundle).total).toBe(1);
    const history = await xmlRequest(`Patient/${id}/_history`);
    expect(history.resource).toMatchObject({ resourceType: 'Bundle', type: 'history' });
    expect((history.resource as Bundle).entry?.map((e) => e.resource?.meta?.versionId)).toEqual(['2', '1']);
  });

  it('delete answers 204 without a body; a read then answers 410 in XML', async () => {
    const del = await xmlRequest(`Patient/${id}`, { method: 'DELETE' });
    expect(del.status).toBe(204);
    expect(del.text).toBe('');
    const gone = await xmlRequest(`Patient/${id}`);
    expect(gone.status).toBe(410);
    expect(gone.headers.get('content-type')).toBe(XML_CT);
    expect(outcomeOf(gone.resource).clarionCode).toBe('CLARION_GONE');
  });

  it('the capability statement in XML', async () => {
    const res = await fhir('metadata?_format=application/fhir+xml');
    expect(res.headers.get('content-type')).toBe(XML_CT);
    const cs = xmlToResource(res.text) as CapabilityStatement;
    expect(cs).toMatchObject({ resourceType: 'CapabilityStatement', fhirVersion: '4.0.1' });
    expect(cs.format).toEqual(expect.arrayContaining(['application/fhir+json', 'application/fhir+xml']));
    expect(cs).toEqual((await fhir('metadata')).body);
  });
});

describe('transaction and batch in XML', () => {
  it('a transaction Bundle in XML: atomic, urn:uuid references rewritten, XML response', async () => {
    const tx = resourceToXml({
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0', resource: { resourceType: 'Patient', name: [{ family: 'Doe' }] }, request: { method: 'POST', url: 'Patient' } },
        { resource: { resourceType: 'Observation', status: 'final', code: { text: 'weight' }, subject: { reference: 'urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0' }, valueQuantity: { value: 72.5, unit: 'kg' } }, request: { method: 'POST', url: 'Observation' } },
      ],
    });
    const res = await xmlRequest('', { method: 'POST', body: tx });
    expect(res.status).toBe(200);
    const bundle = res.resource as Bundle;
    expect(bundle.type).toBe('transaction-response');
    expect(bundle.entry?.map((e) => e.response?.status)).toEqual(['201 Created', '201 Created']);
    const obsLocation = bundle.entry?.[1].response?.location as string;
    const obs = await xmlRequest(obsLocation.replace(/\/_history\/.*$/, ''));
    const patientId = (bundle.entry?.[0].response?.location as string).split('/')[1];
    expect(obs.resource).toMatchObject({ subject: { reference: `Patient/${patientId}` }, valueQuantity: { value: 72.5 } });
  });

  it('a failing transaction writes nothing and answers an XML OperationOutcome', async () => {
    const tx = `<Bundle ${NS}><type value="transaction"/>
      <entry><resource><Patient><name><family value="Rolledback"/></name></Patient></resource><request><method value="POST"/><url value="Patient"/></request></entry>
      <entry><resource><Patient><birthDate value="not-a-date"/></Patient></resource><request><method value="POST"/><url value="Patient"/></request></entry>
    </Bundle>`;
    const res = await xmlRequest('', { method: 'POST', body: tx });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe(XML_CT);
    expect(outcomeOf(res.resource).code).toBeDefined();
    expect(((await fhir('Patient?family=Rolledback')).body as Bundle).total).toBe(0);
  });

  it('a batch in XML', async () => {
    const batch = `<Bundle ${NS}><type value="batch"/>
      <entry><request><method value="GET"/><url value="Patient?family=Doe"/></request></entry>
      <entry><request><method value="GET"/><url value="Patient/unknown-id"/></request></entry>
    </Bundle>`;
    const res = await xmlRequest('', { method: 'POST', body: batch });
    expect(res.status).toBe(200);
    const bundle = res.resource as Bundle;
    expect(bundle.type).toBe('batch-response');
    expect(bundle.entry?.map((e) => e.response?.status.split(' ')[0])).toEqual(['200', '404']);
    expect(bundle.entry?.[1].response?.outcome?.resourceType).toBe('OperationOutcome');
  });
});

describe('operations with a Parameters body in XML', () => {
  it('POST Subscription/$status with an XML Parameters body', async () => {
    const params = `<Parameters ${NS}><parameter><name value="status"/><valueCode value="active"/></parameter></Parameters>`;
    const res = await xmlRequest('Subscription/$status', { method: 'POST', body: params });
    expect(res.status).toBe(200);
    expect(res.resource).toMatchObject({ resourceType: 'Bundle', type: 'searchset', total: 0 });
    const wrong = await xmlRequest('Subscription/$status', { method: 'POST', body: `<Patient ${NS}/>` });
    expect(wrong.status).toBe(400);
    expect(outcomeOf(wrong.resource).diagnostics).toMatch(/must be a Parameters resource/);
  });
});

describe('errors for XML requests', () => {
  it.each([
    ['an unclosed tag', `<Patient ${NS}>\n<name><family value="x"/>\n</Patient>`, 'CLARION_INVALID_XML', /not well-formed XML: Expected closing tag 'name'.*line 3/],
    ['not XML at all', '{"resourceType":"Patient"}', 'CLARION_INVALID_XML', /not well-formed XML/],
    ['a wrong root', `<Person ${NS}><name><family value="x"/></name></Person>`, 'CLARION_RESOURCE_TYPE_MISMATCH', /resourceType 'Person' in the body does not match 'Patient'/],
    ['a root that is no resource', `<Foo ${NS}/>`, 'CLARION_NOT_A_RESOURCE', /<Foo> is not a FHIR resource type/],
    ['a broken XHTML div', `<Patient ${NS}><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>x</div></text></Patient>`, 'CLARION_INVALID_XML', /Expected closing tag 'p'/],
    ['an unknown element', `<Patient ${NS}><shoeSize value="44"/></Patient>`, 'CLARION_INVALID_FHIR_XML', /Patient.shoeSize/],
    ['text content', `<Patient ${NS}><gender>male</gender></Patient>`, 'CLARION_INVALID_FHIR_XML', /text content 'male'/],
    ['an invalid R4 value', `<Patient ${NS}><birthDate value="25.12.1974"/></Patient>`, 'CLARION_VALIDATION_FAILED', /birthDate/],
  ])('%s → 400 OperationOutcome, in XML when XML is accepted and in JSON otherwise', async (_label, body, code, diagnostics) => {
    const xml = await xmlRequest('Patient', { method: 'POST', body });
    expect(xml.status).toBe(400);
    expect(xml.headers.get('content-type')).toBe(XML_CT);
    expect(outcomeOf(xml.resource)).toMatchObject({ clarionCode: code });
    expect(outcomeOf(xml.resource).diagnostics).toMatch(diagnostics);
    const json = await fhir('Patient', { method: 'POST', body, headers: { 'content-type': 'application/fhir+xml' } });
    expect(json.status).toBe(400);
    expect(json.headers.get('content-type')).toBe('application/fhir+json; charset=utf-8');
    expect(firstIssue(json.body).clarionCode).toBe(code);
  });

  it('unknown type and unknown id answer XML OperationOutcomes', async () => {
    const unknownType = await xmlRequest('Nonsense/1');
    expect(unknownType.status).toBe(404);
    expect(outcomeOf(unknownType.resource).clarionCode).toBe('CLARION_UNKNOWN_RESOURCE_TYPE');
    const unknownId = await xmlRequest('Patient/does-not-exist?_format=xml');
    expect(unknownId.status).toBe(404);
    expect(outcomeOf(unknownId.resource).clarionCode).toBe('CLARION_NOT_FOUND');
  });

  it('text/xml bodies and XML for PATCH are refused with 415', async () => {
    const textXml = await fhir('Patient', { method: 'POST', body: `<Patient ${NS}/>`, headers: { 'content-type': 'text/xml' } });
    expect(textXml.status).toBe(415);
    expect(firstIssue(textXml.body).diagnostics).toMatch(/application\/fhir\+xml/);
    const created = await fhir<Patient>('Patient', { method: 'POST', body: { resourceType: 'Patient' } });
    const patch = await fhir(`Patient/${created.body.id}`, { method: 'PATCH', body: `<Parameters ${NS}/>`, headers: { 'content-type': 'application/fhir+xml' } });
    expect(patch.status).toBe(415);
  });

  it('a stored narrative that is not well-formed XHTML → 406 for XML (JSON still works)', async () => {
    const html = { resourceType: 'Patient', text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml"><p>a<br>b</p></div>' } };
    const created = await fhir<Patient>('Patient', { method: 'POST', body: html });
    expect(created.status).toBe(201);
    const xml = await xmlRequest(`Patient/${created.body.id}`);
    expect(xml.status).toBe(406);
    expect(outcomeOf(xml.resource)).toMatchObject({ clarionCode: 'CLARION_NOT_REPRESENTABLE_AS_XML', diagnostics: expect.stringMatching(/not well-formed XHTML/) });
    expect((await fhir(`Patient/${created.body.id}`)).status).toBe(200);
  });

  it('an empty XML body on create is "not a resource", not a crash', async () => {
    const res = await fhir('Patient', { method: 'POST', body: ' ', headers: { 'content-type': 'application/fhir+xml' } });
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_NOT_A_RESOURCE');
  });
});
