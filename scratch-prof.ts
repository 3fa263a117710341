import { readFileSync } from 'node:fs';
import { searchParamsFor } from './src/fhir/search/params.js';
import { evaluateTyped } from './src/fhir/search/fhirpath-eval.js';
import { extractSearchIndex } from './src/fhir/search/extract.js';
const dir = 'node_modules/hl7.fhir.r4.examples/';
const obs = JSON.parse(readFileSync(dir + 'Observation-blood-pressure.json', 'utf8'));
extractSearchIndex(obs);
const times: [string, number][] = [];
for (const def of searchParamsFor('Observation').values()) {
  if (!def.expression) continue;
  const t0 = performance.now();
  for (let i = 0; i < 2000; i++) evaluateTyped(def.expression, obs, obs);
  times.push([def.code + ' ' + def.expression.slice(0, 80), (performance.now() - t0) / 2]);
}
times.sort((a, b) => b[1] - a[1]);
console.log(times.slice(0, 15).map(([a, b]) => b.toFixed(2) + ' ' + a).join('\n'));
console.log(times.reduce((s, x) => s + x[1], 0));
