import { readFileSync } from 'node:fs';
import { resourceToXml, xmlToResource } from './src/fhir/xml/fhir-xml.ts';
const json = JSON.parse(readFileSync('node_modules/hl7.fhir.r4.examples/Bundle-valuesets.json', 'utf8'));
let t = performance.now();
const x = resourceToXml(json);
console.log('toXml', performance.now() - t); t = performance.now();
xmlToResource(x);
console.log('toRes', performance.now() - t);
