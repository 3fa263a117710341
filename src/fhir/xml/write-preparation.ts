/**
 * The JSON given to the converter for writing XML: a copy of the resource with three things the
 * `fhir@4.12.0` writer gets wrong put in a form it gets right.
 * - Narrative divs become placeholders (narrative-xhtml.ts).
 * - Decimals that JavaScript prints in exponent form (1e-22, -1e+245) are written as plain decimal
 *   strings: the writer uses String(n), and "1e-22" is not a FHIR decimal (its own reader refuses it).
 * - A repeated primitive given only by its `_x` companion (`"_event": [{ "extension": […] }]`, no
 *   `event`) is dropped by the writer; an `x` of nulls makes it write one element per companion.
 */
import { divPlaceholder } from './narrative-xhtml.js';

export function prepareForWriting(resource: object): { copy: object; divs: string[] } {
  const divs: string[] = [];
  const copy = JSON.parse(JSON.stringify(resource), function (this: Record<string, unknown>, key, value: unknown) {
    if (typeof value === 'number') return /e/i.test(String(value)) ? plainDecimal(value) : value;
    if (key === 'div' && typeof value === 'string') return divPlaceholder(value, divs);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) addMissingPrimitiveArrays(value as Record<string, unknown>);
    return value;
  }) as object;
  return { copy, divs };
}

function addMissingPrimitiveArrays(obj: Record<string, unknown>): void {
  for (const [key, companion] of Object.entries(obj)) {
    if (key.startsWith('_') && Array.isArray(companion) && obj[key.slice(1)] === undefined) {
      obj[key.slice(1)] = companion.map(() => null);
    }
  }
}

/** 1e-22 → "0.0000000000000000000001", -1.5e+21 → "-1500000000000000000000". */
export function plainDecimal(n: number): string {
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(String(n));
  if (!m) return String(n);
  const [, sign, lead, fraction = '', exponentText] = m;
  const exponent = Number(exponentText);
  const digits = lead + fraction;
  if (exponent < 0) return `${sign}0.${'0'.repeat(-exponent - 1)}${digits}`;
  const point = exponent + 1;
  return digits.length <= point ? `${sign}${digits}${'0'.repeat(point - digits.length)}` : `${sign}${digits.slice(0, point)}.${digits.slice(point)}`;
}
