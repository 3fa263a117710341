import { readFileSync, readdirSync } from 'node:fs';
import { searchParamsFor } from './src/fhir/search/params.js';
import { evaluateFhirPath } from './src/fhir/search/fhirpath-eval.js';
import { compileFast, evaluateFast } from './src/fhir/search/fast-path.js';
const dir = 'node_modules/hl7.fhir.r4.examples/';
let fastN = 0, slowN = 0, bad = 0; const slow = new Map<string, number>();
for (const f of readdirSync(dir)) {
  if (!f.endsWith('.json')) continue; let r: any; try { r = JSON.parse(readFileSync(dir + f, 'utf8')); } catch { continue; }
  if (!r.resourceType) continue;
  for (const def of searchParamsFor(r.resourceType).values()) {
    if (!def.expression) continue;
    if (def.type === 'composite') {
      for (const el of evaluateFhirPath(def.expression, r, r)) for (const comp of def.components!) {
        const base = el.path ?? el.type!;
        const c = compileFast(comp.expression, base, true);
        if (!c) { slowN++; slow.set(base + ' :: ' + comp.expression, 1); continue; }
        fastN++;
        const a = evaluateFast(c, el.data).map(v => JSON.stringify([v.type, v.data]));
        const b = evaluateFhirPath(comp.expression, el.data, r, base).map(v => JSON.stringify([v.type, v.data]));
        if (JSON.stringify([...new Set(a)].sort()) !== JSON.stringify([...new Set(b)].sort())) { if (bad++ < 10) console.log(f, def.code, base, comp.expression, '\n fast', a.join(' ').slice(0, 300), '\n fp  ', b.join(' ').slice(0, 300)); }
      }
      continue;
    }
    const c = compileFast(def.expression, r.resourceType);
    if (!c) { slowN++; slow.set(def.expression, 1); continue; }
    fastN++;
    const a = evaluateFast(c, r).map(v => JSON.stringify([v.type?.startsWith("System") ? "string" : v.type, v.data]));
    const b = evaluateFhirPath(def.expression, r, r).map(v => JSON.stringify([v.type?.startsWith("System") ? "string" : v.type, v.data]));
    if (JSON.stringify([...new Set(a)].sort()) !== JSON.stringify([...new Set(b)].sort()) && !(b.length === 0 && / as /.test(def.expression))) { if (bad++ < 10) console.log(f, def.code, def.expression, '\n fast', a.join(' ').slice(0, 300), '\n fp  ', b.join(' ').slice(0, 300)); }
  }
}
console.log({ fastN, slowN, bad }); console.log([...slow.keys()].slice(0, 30).join('\n'));
