import { readFileSync, readdirSync } from 'node:fs';
import { extractSearchIndex } from './src/fhir/search/extract.js';
const dir = 'node_modules/hl7.fhir.r4.examples/';
const pat = JSON.parse(readFileSync(dir + 'Patient-example.json', 'utf8'));
const obs = JSON.parse(readFileSync(dir + 'Observation-blood-pressure.json', 'utf8'));
const t00 = performance.now();
console.log(JSON.stringify(extractSearchIndex(pat)));
console.log('first', performance.now() - t00);
console.log(JSON.stringify(extractSearchIndex(obs)));
for (const r of [pat, obs]) for (let k = 0; k < 3; k++) { const t0 = performance.now(); for (let i = 0; i < 2000; i++) extractSearchIndex(r); console.log(r.resourceType, ((performance.now() - t0) / 2000 * 1000).toFixed(1), 'us'); }
let n = 0; const t1 = performance.now();
for (const f of readdirSync(dir)) { if (!f.endsWith('.json')) continue; let r; try { r = JSON.parse(readFileSync(dir + f, 'utf8')); } catch { continue; } if (!r.resourceType) continue; extractSearchIndex(r); n++; }
console.log(n, 'examples', performance.now() - t1, 'ms');
