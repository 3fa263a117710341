import fhirpath from 'fhirpath';
import r4 from 'fhirpath/fhir-context/r4/index.js';
import { readFileSync } from 'node:fs';
const obs = JSON.parse(readFileSync('node_modules/hl7.fhir.r4.examples/Observation-blood-pressure.json','utf8'));
const pat = JSON.parse(readFileSync('node_modules/hl7.fhir.r4.examples/Patient-example.json','utf8'));
console.log(fhirpath.compile('Resource.meta.lastUpdated | Resource.id', r4)(obs));
const nodes = fhirpath.compile('Observation | Observation.component', r4)(obs, {}, {resolveInternalTypes:false});
console.log(nodes.map(n=>[n.path, n.fhirNodeDataType, typeof n.data]));
for (const n of nodes) {
  const f = fhirpath.compile({base: n.path, expression: 'value.as(Quantity)'}, r4);
  console.log(JSON.stringify(f(n.data)));
  const g = fhirpath.compile({base: n.path, expression: 'code'}, r4);
  console.log(JSON.stringify(g(n.data, {}, {resolveInternalTypes:false}).map(x=>[x.fhirNodeDataType, x.data])));
}
const ms = {resourceType:'MolecularSequence', referenceSeq:{chromosome:{text:'x', coding:[{code:'1'}]}}, variant:[{start:1,end:2}]};
const vs = fhirpath.compile('MolecularSequence.variant', r4)(ms, {}, {resolveInternalTypes:false});
const h = fhirpath.compile({base: 'MolecularSequence.variant', expression: '%resource.referenceSeq.chromosome'}, r4);
try { console.log(h(vs[0].data, {resource: ms})); } catch(e) { console.log('err', e.message); }
// date types
console.log(fhirpath.compile('Patient.birthDate | Patient.meta.lastUpdated', r4)({resourceType:'Patient', birthDate:'1990', meta:{lastUpdated:'2020-01-01T00:00:00Z'}}, {}, {resolveInternalTypes:false}).map(x=>[x.fhirNodeDataType, x.data]));
console.log(fhirpath.compile('Patient.deceased.exists() and Patient.deceased != false', r4)(pat, {}, {resolveInternalTypes:false}));
console.log(fhirpath.compile('Patient.name', r4)(pat, {}, {resolveInternalTypes:false}).map(x=>[x.fhirNodeDataType, x.path, x.data]).slice(0,1));
console.log(fhirpath.compile('Patient.gender', r4)(pat, {}, {resolveInternalTypes:false}).map(x=>[x.fhirNodeDataType, x.path, x.data]).slice(0,1));
