import { readdirSync, readFileSync, statSync } from 'node:fs';
import { XMLValidator } from 'fast-xml-parser';
import { resourceToXml } from './src/fhir/xml/fhir-xml.ts';
import { readXmlContent } from './src/fhir/xml/xml-structure.ts';
import { fhirConverter } from './src/fhir/xml/fhir-converter.ts';
const dir = 'node_modules/hl7.fhir.r4.examples';
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'package.json').map(f => [f, statSync(`${dir}/${f}`).size] as const).sort((a,b) => b[1]-a[1]);
console.log(files.slice(0,10), files.reduce((s, f) => s + f[1], 0));
for (const [f] of files.slice(0, 4)) {
  const json = JSON.parse(readFileSync(`${dir}/${f}`, 'utf8'));
  let t = performance.now(); const x = resourceToXml(json); const a = performance.now() - t;
  t = performance.now(); XMLValidator.validate(x); const b = performance.now() - t;
  t = performance.now(); readXmlContent(x); const c = performance.now() - t;
  t = performance.now(); fhirConverter().toObject(x); const d = performance.now() - t;
  console.log(f, x.length, 'toXml', a.toFixed(0), 'validate', b.toFixed(0), 'read', c.toFixed(0), 'toObj', d.toFixed(0));
}
