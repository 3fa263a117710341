/**
 * A fast evaluator for the simple FHIRPath shapes that make up most search parameter expressions
 * (`Patient.name`, `(Observation.value as Quantity)`, `Observation.value.as(Period)`,
 * `Encounter.participant.individual.where(resolve() is Practitioner)`, `Patient.telecom.where(system='phone')`),
 * compiled statically against fhirpath's own R4 model (path → type, choice types). Expressions of any
 * other shape return undefined from `compileFast` and are evaluated by fhirpath.js (fhirpath-eval.ts).
 * A test checks that both evaluators agree on every R4 example for every parameter.
 */
import { createRequire } from 'node:module';
import type { TypedValue } from './typed-value.js';

const require = createRequire(import.meta.url);

type PathType = string | { code: string };
let path2Type: Record<string, PathType> | undefined;
let choicePaths: Record<string, string[]> | undefined;
let elsewhere: Record<string, string> | undefined;
let type2Parent: Record<string, string> | undefined;

function model(): void {
  if (path2Type) return;
  path2Type = require('fhirpath/fhir-context/r4/path2Type.json') as Record<string, PathType>;
  choicePaths = require('fhirpath/fhir-context/r4/choiceTypePaths.json') as Record<string, string[]>;
  elsewhere = require('fhirpath/fhir-context/r4/pathsDefinedElsewhere.json') as Record<string, string>;
  type2Parent = require('fhirpath/fhir-context/r4/type2Parent.json') as Record<string, string>;
}

const PRIMITIVES = new Set([
  'string', 'boolean', 'integer', 'decimal', 'uri', 'url', 'canonical', 'code', 'id', 'oid', 'uuid', 'markdown',
  'base64Binary', 'instant', 'date', 'dateTime', 'time', 'positiveInt', 'unsignedInt', 'xhtml',
]);

/** Choice suffix (`DateTime`) → FHIR type name (`dateTime`). */
function choiceTypeName(suffix: string): string {
  const lower = suffix[0].toLowerCase() + suffix.slice(1);
  return PRIMITIVES.has(lower) ? lower : suffix;
}

function isA(type: string, target: string): boolean {
  for (let t: string | undefined = type; t; t = type2Parent![t]) {
    if (t === target || t.toLowerCase() === target.toLowerCase()) return true;
  }
  return false;
}

/** One navigation step, resolved at compile time. */
type Step =
  | { kind: 'field'; alternatives: { key: string; type: string; path: string }[] }
  | { kind: 'as'; type: string }
  | { kind: 'refType'; type: string; re: RegExp }
  | { kind: 'eq'; field: string; value: string };

type Compiled = Step[][];

/** Types after which the element's own path is kept (backbone elements), else the type name. */
function childPath(elemPath: string, t: PathType): { type: string; path: string } {
  const code = typeof t === 'string' ? t : t.code;
  const type = code.startsWith('System.') ? (code === 'System.String' ? 'string' : code.slice(7).toLowerCase()) : code;
  return type === 'BackboneElement' || type === 'Element' ? { type, path: elemPath } : { type, path: type };
}

function lookup(path: string): PathType | undefined {
  const t = path2Type![path];
  if (t !== undefined) return t;
  const alias = elsewhere![path];
  return alias ? path2Type![alias] : undefined;
}

/** Parses one union part into steps; undefined when the shape is not supported. */
function compilePart(part: string, resourceType: string, relative: boolean): Step[] | undefined {
  let s = part.trim();
  let cast: string | undefined;
  let rest = '';
  const castM = /^\(([A-Za-z][\w.]*) as ([A-Za-z]+)\)(.*)$/.exec(s);
  if (castM) {
    s = castM[1];
    cast = castM[2];
    rest = castM[3];
  } else {
    const m = /^([A-Za-z]\w*(?:\.[a-z]\w*(?![\w(]))*)(.*)$/.exec(s);
    if (!m) return undefined;
    s = m[1];
    rest = m[2];
  }
  const segs = s.split('.');
  const root = relative ? resourceType : segs.shift()!;
  if (!relative && root !== resourceType && root !== 'Resource') return undefined;
  if (relative && segs.some((x) => !/^[a-z]/.test(x))) return undefined;
  // tail: .ident | .as(T) | .where(resolve() is T) | .where(ident='lit')
  const tail: ({ ident: string } | Step)[] = [];
  let r = rest;
  while (r.length > 0) {
    let m: RegExpExecArray | null;
    if ((m = /^\.as\(([A-Za-z]+)\)/.exec(r))) tail.push({ kind: 'as', type: m[1] });
    else if ((m = /^\.where\(resolve\(\) is ([A-Za-z]+)\)/.exec(r))) tail.push({ kind: 'refType', type: m[1], re: refTypeRegExp(m[1]) });
    else if ((m = /^\.where\(([a-z][\w]*)\s*=\s*'([^'\\]*)'\)/.exec(r))) tail.push({ kind: 'eq', field: m[1], value: m[2] });
    else if ((m = /^\.([a-z][\w]*)/.exec(r)) && !r.startsWith(`.${m[1]}(`)) tail.push({ ident: m[1] });
    else return undefined;
    r = r.slice(m[0].length);
  }
  const items: ({ ident: string } | Step)[] = [...segs.map((ident) => ({ ident })), ...(cast ? [{ kind: 'as' as const, type: cast }] : []), ...tail];
  const steps: Step[] = [];
  let paths: { type: string; path: string }[] = [{ type: resourceType, path: root === 'Resource' ? 'Resource' : resourceType }];
  if (relative && path2Type![resourceType] === undefined && !/^[A-Z][A-Za-z]*$/.test(resourceType)) return undefined;
  for (let i = 0; i < items.length; i++) {
    const it = items[i];
    if ('ident' in it) {
      const next = items[i + 1];
      const castTo = next && 'kind' in next && next.kind === 'as' ? next.type : undefined;
      const alternatives: { key: string; type: string; path: string }[] = [];
      for (const p of paths) {
        const elemPath = `${p.path}.${it.ident}`;
        const choices = choicePaths![elemPath];
        if (choices) {
          for (const c of choices) {
            const type = choiceTypeName(c);
            if (castTo && !isA(type, castTo)) continue;
            alternatives.push({ key: it.ident + c, type, path: PRIMITIVES.has(type) ? type : type });
          }
          continue;
        }
        const t = lookup(elemPath);
        if (t === undefined) return undefined;
        alternatives.push({ key: it.ident, ...childPath(elemPath, t) });
      }
      steps.push({ kind: 'field', alternatives });
      paths = alternatives.map((a) => ({ type: a.type, path: a.path }));
    } else {
      if (it.kind === 'as') paths = paths.filter((p) => isA(p.type, it.type));
      steps.push(it);
    }
  }
  return steps;
}

const cache = new Map<string, Compiled | null>();

/** Splits at top-level `|` (parts are simple paths here: no strings with `|`, parens balanced). */
function parts(expr: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < expr.length; i++) {
    const c = expr[i];
    if (c === '(') depth++;
    else if (c === ')') depth--;
    else if (c === '|' && depth === 0) {
      out.push(expr.slice(start, i));
      start = i + 1;
    }
  }
  out.push(expr.slice(start));
  return out;
}

/**
 * Compiles `expression` for resources of `resourceType` (or, with `relative`, for elements at the
 * FHIRPath path `resourceType`, e.g. `Observation.component`); undefined if it needs full FHIRPath.
 */
export function compileFast(expression: string, resourceType: string, relative = false): Compiled | undefined {
  const key = `${relative ? 'R' : 'A'}${resourceType}\u0000${expression}`;
  let c = cache.get(key);
  if (c === undefined) {
    model();
    const compiled: Compiled = [];
    for (const p of parts(expression)) {
      const steps = compilePart(p, resourceType, relative);
      if (!steps) {
        compiled.length = 0;
        break;
      }
      compiled.push(steps);
    }
    c = compiled.length > 0 ? compiled : null;
    cache.set(key, c);
  }
  return c ?? undefined;
}

/** `resolve() is T` without resolving: the reference string names type T (or Reference.type is T). */
export function refTypeRegExp(type: string): RegExp {
  return new RegExp(`^(.*/)?${type}/[^/]+(/_history/[^/]+)?$`);
}

function refMatches(data: unknown, type: string, re: RegExp): boolean {
  if (typeof data !== 'object' || data === null) return false;
  const o = data as Record<string, unknown>;
  if (o.type === type) return true;
  const ref = o.reference;
  return typeof ref === 'string' && re.test(ref);
}

/** Evaluates a compiled expression on a resource. */
export function evaluateFast(compiled: Compiled, resource: unknown): TypedValue[] {
  const out: TypedValue[] = [];
  for (const steps of compiled) {
    let nodes: TypedValue[] = [{ type: undefined, data: resource, path: undefined }];
    for (const step of steps) {
      if (nodes.length === 0) break;
      const next: TypedValue[] = [];
      switch (step.kind) {
        case 'field':
          for (const n of nodes) {
            const o = n.data as Record<string, unknown>;
            if (typeof o !== 'object' || o === null) continue;
            for (const a of step.alternatives) {
              const v = o[a.key];
              if (v === undefined || v === null) continue;
              if (Array.isArray(v)) {
                for (const x of v) if (x !== null && x !== undefined) next.push({ type: a.type, data: x, path: a.path });
              } else next.push({ type: a.type, data: v, path: a.path });
            }
          }
          break;
        case 'as':
          for (const n of nodes) if (n.type && isA(n.type, step.type)) next.push(n);
          break;
        case 'refType':
          for (const n of nodes) if (refMatches(n.data, step.type, step.re)) next.push(n);
          break;
        case 'eq':
          for (const n of nodes) if ((n.data as Record<string, unknown>)?.[step.field] === step.value) next.push(n);
          break;
      }
      nodes = next;
    }
    for (const n of nodes) out.push(n);
  }
  return out;
}
