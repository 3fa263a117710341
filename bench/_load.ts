import { createServer } from 'node:http';
const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
let got = 0;
const srv = createServer((req, res) => { req.resume(); req.on('end', () => { got++; res.end(); }); });
await new Promise<void>((r) => srv.listen(18182, '127.0.0.1', r));
const base = 'http://127.0.0.1:18181/fhir';
const post = (p: string, b: unknown) => fetch(`${base}/${p}`, { method: 'POST', headers: { 'content-type': 'application/fhir+json' }, body: JSON.stringify(b) });
await post('Subscription', { resourceType: 'Subscription', status: 'requested', reason: 'x', criteria: 'http://hl7.org/SubscriptionTopic/admission',
  _criteria: { extension: [{ url: `${IG}backport-filter-criteria`, valueString: 'Encounter?patient=Patient/m' }] },
  channel: { type: 'rest-hook', endpoint: 'http://127.0.0.1:18182/hook', payload: 'application/fhir+json', _payload: { extension: [{ url: `${IG}backport-payload-content`, valueCode: 'id-only' }] } } });
await new Promise((r) => setTimeout(r, 1000));
const t = performance.now();
for (let i = 0; i < 600; i++) await post('Encounter', { resourceType: 'Encounter', status: 'in-progress', class: { code: 'IMP', system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode' }, subject: { reference: 'Patient/m' } }).then((r) => r.text());
console.log('writes/s', (600 / ((performance.now() - t) / 1000)).toFixed(0));
while (got < 601) await new Promise((r) => setTimeout(r, 50));
console.log('all delivered after', ((performance.now() - t) / 1000).toFixed(2), 's');
srv.close();
