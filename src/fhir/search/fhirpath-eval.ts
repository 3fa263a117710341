/**
 * FHIRPath evaluation for search parameter expressions: each expression is compiled once per
 * (base path, expression) and cached. Results are returned as typed nodes (`resolveInternalTypes:
 * false`) so index extraction knows each value's FHIR data type (Coding vs Identifier, …).
 */
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4/index.js';
import { compileFast, evaluateFast } from './fast-path.js';
import type { TypedValue } from './typed-value.js';

export type { TypedValue };

type Evaluator = (resource: unknown, env?: Record<string, unknown>, options?: { resolveInternalTypes?: boolean }) => unknown[];

const cache = new Map<string, Evaluator>();

/**
 * `X.where(resolve() is Patient)` → a check of the reference's type without resolving it (fhirpath's
 * resolve() is asynchronous and needs a resolver): the usual technique.
 */
export function rewriteResolve(expr: string): string {
  return expr.replace(
    /resolve\(\)\s+is\s+([A-Za-z]+)/g,
    (_m, t: string) => `(reference.matches('^(.*/)?${t}/[^/]+(/_history/[^/]+)?$') or type = '${t}')`,
  );
}

function compiled(expression: string, base?: string): Evaluator {
  const key = base ? `${base}\u0000${expression}` : expression;
  let f = cache.get(key);
  if (!f) {
    const e = rewriteResolve(expression);
    f = fhirpath.compile(base ? { base, expression: e } : e, r4Model) as unknown as Evaluator;
    cache.set(key, f);
  }
  return f;
}

interface NodeLike {
  data: unknown;
  fhirNodeDataType?: string;
  path?: string;
}

function isNode(v: unknown): v is NodeLike {
  return typeof v === 'object' && v !== null && 'data' in v && ('fhirNodeDataType' in v || 'path' in v);
}

/**
 * Evaluates `expression` on `data` (a resource, or an element at `base` of `resource`) and returns
 * typed values. Evaluation errors yield no values (an index must never make a write fail).
 */
export function evaluateTyped(expression: string, data: unknown, resource: unknown, base?: string): TypedValue[] {
  const fast = base ? compileFast(expression, base, true) : data === resource ? compileFast(expression, (resource as { resourceType: string }).resourceType) : undefined;
  if (fast) return evaluateFast(fast, data);
  return evaluateFhirPath(expression, data, resource, base);
}

/** Evaluation by fhirpath.js only (the reference the fast path is tested against). */
export function evaluateFhirPath(expression: string, data: unknown, resource: unknown, base?: string): TypedValue[] {
  let raw: unknown[];
  try {
    raw = compiled(expression, base)(data, { resource, rootResource: resource }, { resolveInternalTypes: false });
  } catch {
    return [];
  }
  const out: TypedValue[] = [];
  for (const v of raw) {
    if (isNode(v)) {
      if (v.data === undefined || v.data === null) continue;
      out.push({ type: v.fhirNodeDataType, data: v.data, path: v.path });
    } else if (v !== undefined && v !== null) {
      const t = typeof v === 'boolean' ? 'boolean' : typeof v === 'number' ? 'decimal' : typeof v === 'string' ? 'string' : undefined;
      // FHIRPath system types (FP_DateTime, FP_Quantity, …) stringify to their literal form.
      out.push({ type: t ?? 'string', data: t ? v : (v as { toString(): string }).toString(), path: undefined });
    }
  }
  return out;
}
