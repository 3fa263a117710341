import { readdirSync, readFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';
import { resourceToXml, xmlToResource } from './src/fhir/xml/fhir-xml.ts';
const dir = 'node_modules/hl7.fhir.r4.examples';
const files = readdirSync(dir).filter((f) => f.endsWith('.json') && f !== 'package.json').sort();
let ok = 0; const bad: string[] = [];
const t0 = performance.now();
for (const f of files) {
  const text = readFileSync(`${dir}/${f}`, 'utf8');
  const json = JSON.parse(text);
  if (!process.env.ALL && !f.startsWith(process.env.PREFIX ?? "")) continue;
  try {
    const back = xmlToResource(resourceToXml(json));
    if (isDeepStrictEqual(back, json)) ok++;
    else {
      // find first diff
      const diff = (a: any, b: any, p: string): string | undefined => {
        if (isDeepStrictEqual(a, b)) return undefined;
        if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return `${p}: ${JSON.stringify(a)?.slice(0,150)} vs ${JSON.stringify(b)?.slice(0,150)}`;
        for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) { const d = diff(a[k], b[k], `${p}.${k}`); if (d) return d; }
        return `${p}: ?`;
      };
      bad.push(`${f} DIFF ${diff(json, back, '')}`);
    }
  } catch (e: any) { bad.push(`${f} ERR ${e.message.slice(0, 300)}`); }
}
console.log(files.length, ok, ((performance.now() - t0) / 1000).toFixed(1) + 's');
console.log(bad.filter((b) => !b.includes(".div:")).join('\n'));
