/**
 * The direct evaluator of state-change FHIRPath (src/topics/state-change-fhirpath.ts) against
 * fhirpath.js with the R4 model, the evaluator it stands in for: every expression of the built-in
 * topics and of random expressions in the subset, over pairs of previous/current states chosen to hit
 * the edges (missing, empty, several items, primitive extension, choice element, dates, numbers).
 * Wherever the direct evaluator answers, its answer must be fhirpath.js's.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4/index.js';
import { describe, expect, it } from 'vitest';
import { compileStateChangeFhirPath } from '../../src/topics/state-change-fhirpath.js';
import { rewriteBooleanUnion } from '../../src/topics/trigger-evaluator.js';
import { prng } from '../support/prng.js';

const BUILTIN_DIR = join(import.meta.dirname, '../../src/topics/builtin');

function builtinCriteria(): string[] {
  const out: string[] = [];
  for (const f of readdirSync(BUILTIN_DIR).filter((x) => x.endsWith('.json'))) {
    const text = readFileSync(join(BUILTIN_DIR, f), 'utf8');
    for (const m of text.matchAll(/"fhirPathCriteria"\s*:\s*"((?:[^"\\]|\\.)*)"/g)) out.push(JSON.parse(`"${m[1]}"`) as string);
  }
  return out;
}

const PUBLISHED = [
  "(%previous.empty() | (%previous.status != 'finished')) and (%current.status = 'finished')",
  "(%previous.id.empty() or (%previous.status != 'completed')) and (%current.status = 'completed')",
];

const STATES: (Record<string, unknown> | undefined)[] = [
  undefined,
  { resourceType: 'Encounter', id: 'e1', status: 'finished', class: { code: 'IMP' } },
  { resourceType: 'Encounter', id: 'e1', status: 'in-progress', class: { code: 'IMP' } },
  { resourceType: 'Encounter', id: 'e1', class: { code: 'IMP' } },
  { resourceType: 'Encounter', id: 'e1', status: 'finished', _status: { extension: [{ url: 'http://x', valueString: 'y' }] } },
  { resourceType: 'Encounter', _status: { extension: [{ url: 'http://x', valueString: 'y' }] } },
  { resourceType: 'Encounter', id: 'e1', status: 'final', identifier: [{ value: 'a' }, { value: 'b' }] },
  { resourceType: 'Encounter', id: 'e1', status: 'completed', period: { start: '2020-01-01' } },
  { resourceType: 'Observation', id: 'o1', status: 'final', valueQuantity: { value: 5 }, code: { text: 'finished' } },
  { resourceType: 'Observation', id: 'o1', status: 'amended', valueString: 'finished' },
  { resourceType: 'Observation', id: '2020', status: '2020-01-01', valueBoolean: true },
  { resourceType: 'DiagnosticReport', id: 'd1', status: 'final', code: { coding: [{ code: 'finished' }, { code: 'final' }] } },
  { resourceType: 'Patient', id: 'p1', active: true, gender: 'male', name: [{ family: 'in-progress' }] },
];

const NAMES = ['status', 'id', 'class', 'code', 'value', 'period', 'start', 'identifier', 'text', 'coding', 'active', 'name', 'family', 'gender'];
const LITERALS = ['finished', 'in-progress', 'final', 'completed', 'IMP', '2020-01-01', 'e1', 'male', 'true'];

function randomExpression(rnd: () => number, depth = 0): string {
  const pick = <T,>(xs: T[]): T => xs[Math.floor(rnd() * xs.length)];
  const r = rnd();
  if (depth < 3 && r < 0.3) return `(${randomExpression(rnd, depth + 1)}) ${pick(['and', 'or'])} (${randomExpression(rnd, depth + 1)})`;
  let path = pick(['%previous', '%current']);
  const steps = Math.floor(rnd() * 3);
  for (let i = 0; i < steps; i++) path += `.${pick(NAMES)}`;
  const f = rnd();
  if (f < 0.25) return `${path}.empty()`;
  if (f < 0.4) return `${path}.exists()`;
  if (f < 0.5) return `(${path} = '${pick(LITERALS)}').not()`;
  if (f < 0.55) return `${path}.not()`;
  if (f < 0.6) return path;
  return `${path} ${pick(['=', '!='])} '${pick(LITERALS)}'`;
}

function reference(expression: string, previous: unknown, current: unknown): unknown[] {
  const context = current ?? previous ?? {};
  try {
    return fhirpath.evaluate(context, expression, { previous: previous ?? [], current: current ?? [] }, r4Model) as unknown[];
  } catch (err) {
    return [`error: ${(err as Error).message}`];
  }
}

function compare(expression: string): { answered: number; mismatches: string[] } {
  const direct = compileStateChangeFhirPath(expression);
  if (!direct) return { answered: 0, mismatches: [] };
  let answered = 0;
  const mismatches: string[] = [];
  for (const previous of STATES) {
    for (const current of STATES) {
      const got = direct(previous, current);
      if (got === undefined) continue;
      answered++;
      const want = reference(expression, previous, current);
      if (JSON.stringify(got) !== JSON.stringify(want)) {
        mismatches.push(`${expression} | previous ${JSON.stringify(previous)} | current ${JSON.stringify(current)}: ${JSON.stringify(got)} ≠ ${JSON.stringify(want)}`);
      }
    }
  }
  return { answered, mismatches };
}

describe('state-change FHIRPath, evaluated directly, agrees with fhirpath.js', () => {
  it('for the built-in and published topic criteria, which it compiles and answers for ordinary states', () => {
    const expressions = [...builtinCriteria(), ...PUBLISHED].map(rewriteBooleanUnion);
    expect(expressions.length).toBeGreaterThan(3);
    for (const e of expressions) {
      expect(compileStateChangeFhirPath(e), e).toBeDefined();
      const { answered, mismatches } = compare(e);
      expect(mismatches).toEqual([]);
      expect(answered).toBeGreaterThan(STATES.length * 2);
    }
  });

  it('for 1,000 random expressions of the subset', () => {
    const rnd = prng(7);
    const mismatches: string[] = [];
    let answered = 0;
    for (let i = 0; i < 1000; i++) {
      const r = compare(randomExpression(rnd));
      answered += r.answered;
      mismatches.push(...r.mismatches);
    }
    expect(mismatches.slice(0, 10)).toEqual([]);
    expect(answered).toBeGreaterThan(25_000);
  });

  it('leaves everything outside the subset to fhirpath.js', () => {
    for (const e of [
      "%current.status in ('a' | 'b')",
      '%current.code.coding.where(system = \'x\').exists()',
      "status = 'final'",
      "%current.status ~ 'final'",
      '%current.value > 5',
      "%current.status = 'a\\'b'",
      '%current.resourceType = \'Encounter\'',
      '%resource.id.exists()',
    ]) {
      expect(compileStateChangeFhirPath(e), e).toBeUndefined();
    }
  });
});
