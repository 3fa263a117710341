/**
 * A fast acceptance check in front of @medplum/core's validator. Medplum's validator walks every
 * element of the schema through a generic path evaluator and costs 50–100 µs for a small Encounter —
 * the largest single cost of a write under load. Most writes are valid, so this walk, compiled once
 * per type from the same schema, answers only "certainly valid": it makes Medplum's error-level
 * checks (unknown properties, cardinality, array or single value, JSON types, primitive formats,
 * invariants), also inside contained resources and Bundle entries, and gives up — returns false — on
 * anything it does not model exactly (primitive extensions `_x`, slicing, fixed or pattern values,
 * null, empty values, two types of one choice element, a nested resource of unknown type). On false the caller runs Medplum's validator, whose issues it reports; so
 * what is accepted and every diagnostic are Medplum's. test/fhir/quick-validation.test.ts checks that
 * nothing Medplum rejects is accepted here, over the R4 examples and mutations of them.
 */
import { evalFhirPathTyped, parseFhirPath, toTypedValue, UCUM, validationRegexes } from '@medplum/core';
import type { FhirPathAtom, TypedValue } from '@medplum/core';
import { isR4ResourceType } from './definitions.js';
import { isPrimitiveType, jsonProperties, typeSchema, type InternalSchemaElement, type InternalTypeSchema } from './r4-schema.js';

/** Medplum's JSON type per FHIR primitive (its validator's table, which @medplum/core does not export). */
const JSON_TYPE: Readonly<Record<string, 'string' | 'number' | 'boolean'>> = {
  base64Binary: 'string', boolean: 'boolean', canonical: 'string', code: 'string', date: 'string', dateTime: 'string',
  decimal: 'number', id: 'string', instant: 'string', integer: 'number', integer64: 'string', markdown: 'string',
  oid: 'string', positiveInt: 'number', string: 'string', time: 'string', unsignedInt: 'number', uri: 'string',
  url: 'string', uuid: 'string', xhtml: 'string', 'http://hl7.org/fhirpath/System.String': 'string',
};
/** Invariants Medplum's validator skips. */
const SKIPPED_CONSTRAINTS = new Set(['ele-1', 'dom-3', 'org-1', 'sdf-19']);
const MAX_STRING = 1024 * 1024;
const UCUM_VALUE = toTypedValue(UCUM);

interface Invariant {
  atom: FhirPathAtom;
  /**
   * The names the expression can read from its context, when it reads nothing else (no variables,
   * `$this`, type names or context-level functions); undefined otherwise. When none of them is present,
   * the result is the one on an empty object — dom-2, dom-4 and dom-5 on a resource without
   * `contained` — which Medplum's FHIRPath takes ~4 µs to find each time.
   */
  roots?: string[];
  /** The result on an empty object, per context type. */
  whenAbsent?: Map<string, boolean>;
}

const KEYWORDS = new Set(['and', 'or', 'xor', 'implies', 'is', 'as', 'div', 'mod', 'in', 'contains', 'true', 'false']);

/** See {@link Invariant.roots}. Over-inclusion is harmless (the shortcut is taken less often). */
function contextRoots(expression: string): string[] | undefined {
  if (/[%$`\\]/.test(expression)) return undefined;
  const code = expression.replace(/'[^']*'/g, "''");
  const roots = new Set<string>();
  for (const m of code.matchAll(/(\.?)\s*([A-Za-z_][A-Za-z0-9_]*)(\s*\()?/g)) {
    const [, dot, name, call] = m;
    if (dot) continue;
    if (call || !/^[a-z]/.test(name)) return undefined;
    if (!KEYWORDS.has(name)) roots.add(name);
  }
  return [...roots];
}

/** Whether `value` has none of `roots`, as a property, a primitive extension or a choice type. */
function absent(value: unknown, roots: string[]): boolean {
  if (typeof value !== 'object' || value === null) return false;
  for (const key in value) {
    const name = key.charCodeAt(0) === 95 ? key.slice(1) : key;
    for (const r of roots) {
      if (name.startsWith(r) && (name.length === r.length || isUpper(name.charCodeAt(r.length)))) return false;
    }
  }
  return true;
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

interface Slot {
  /** The schema element's key (`value[x]` for `valueQuantity`). */
  key: string;
  element: InternalSchemaElement;
  /** The concrete type of the property. */
  type: string;
  jsType?: 'string' | 'number' | 'boolean';
  regex?: RegExp;
  invariants: Invariant[];
  /** Something only Medplum's walk handles (nested resource, slicing, fixed/pattern, unknown primitive). */
  unsupported: boolean;
}

interface Plan {
  slots: Map<string, Slot>;
  /** Elements with min > 0, as the property names that satisfy each. */
  required: string[][];
  invariants: Invariant[];
}

const plans = new Map<string, Plan | null>();

function invariantsOf(constraints: InternalSchemaElement['constraints']): Invariant[] {
  const out: Invariant[] = [];
  for (const c of constraints ?? []) {
    if (c.severity !== 'error' || SKIPPED_CONSTRAINTS.has(c.key)) continue;
    out.push({ atom: parseFhirPath(c.expression), roots: contextRoots(c.expression) });
  }
  return out;
}

function slotFor(key: string, element: InternalSchemaElement, type: string): Slot {
  const primitive = isPrimitiveType(type);
  const jsType = JSON_TYPE[type];
  const unsupported = (primitive && !jsType) || !!element.fixed || !!element.pattern || !!element.slicing?.slices.length;
  return { key, element, type, jsType, regex: validationRegexes[type], invariants: invariantsOf(element.constraints), unsupported };
}

function compile(schema: InternalTypeSchema): Plan {
  const slots = new Map<string, Slot>();
  const required: string[][] = [];
  for (const [key, element] of Object.entries(schema.elements)) {
    const props = jsonProperties(key, element);
    const choice = key.endsWith('[x]');
    // Several types without [x]: the property stays unknown here, so Medplum decides.
    if (choice || element.type.length === 1) for (const p of props) slots.set(p.name, slotFor(key, element, p.type));
    if (element.min > 0) required.push(choice ? props.map((p) => p.name) : [key]);
  }
  return { slots, required, invariants: invariantsOf(schema.constraints) };
}

function planFor(type: string): Plan | null {
  let plan = plans.get(type);
  if (plan === undefined) {
    const schema = typeSchema(type);
    plan = schema ? compile(schema) : null;
    plans.set(type, plan);
  }
  return plan;
}

class QuickWalk {
  private readonly variables: Record<string, TypedValue>;

  constructor(root: TypedValue) {
    this.variables = { '%ucum': UCUM_VALUE, '%resource': root, '%rootResource': root };
  }

  /** Whether every invariant holds for `value` (Medplum: exactly one result, `true`). */
  invariantsHold(invariants: Invariant[], value: TypedValue): boolean {
    if (invariants.length === 0) return true;
    for (const inv of invariants) {
      if (inv.roots && absent(value.value, inv.roots)) {
        inv.whenAbsent ??= new Map();
        let holds = inv.whenAbsent.get(value.type);
        if (holds === undefined) {
          holds = this.holds(inv, { type: value.type, value: {} });
          inv.whenAbsent.set(value.type, holds);
        }
        if (!holds) return false;
      } else if (!this.holds(inv, value)) {
        return false;
      }
    }
    return true;
  }

  private holds(inv: Invariant, value: TypedValue): boolean {
    let result: TypedValue[];
    try {
      result = evalFhirPathTyped(inv.atom, [value], { ...this.variables, '%context': value });
    } catch {
      return false;
    }
    return result.length === 1 && result[0].value === true;
  }

  object(value: Record<string, unknown>, plan: Plan, isRoot: boolean): boolean {
    let choices: Set<string> | undefined;
    for (const name in value) {
      if (name === 'resourceType') {
        if (isRoot) continue;
        return false;
      }
      const slot = plan.slots.get(name);
      if (!slot || slot.unsupported) return false;
      if (slot.key !== name) {
        choices ??= new Set();
        if (choices.has(slot.key)) return false;
        choices.add(slot.key);
      }
      const v = value[name];
      const el = slot.element;
      if (el.isArray) {
        if (!Array.isArray(v) || v.length === 0 || v.length < el.min || v.length > el.max) return false;
        for (const item of v) if (!this.value(item, slot)) return false;
      } else {
        if (Array.isArray(v) || !this.value(v, slot)) return false;
      }
    }
    for (const names of plan.required) {
      if (!names.some((n) => value[n] !== undefined)) return false;
    }
    return true;
  }

  private value(v: unknown, slot: Slot): boolean {
    if (v === null || v === undefined) return false;
    if (slot.jsType) {
      if (typeof v !== slot.jsType) return false;
      if (typeof v === 'string') {
        if (v.length > MAX_STRING || v.trim() === '' || (slot.regex && !slot.regex.test(v))) return false;
      } else if (typeof v === 'number') {
        if (!Number.isFinite(v)) return false;
        const t = slot.type;
        if ((t === 'integer' || t === 'positiveInt' || t === 'unsignedInt') && !Number.isInteger(v)) return false;
        if ((t === 'positiveInt' && v <= 0) || (t === 'unsignedInt' && v < 0)) return false;
      }
      return this.invariantsHold(slot.invariants, { type: slot.type, value: v });
    }
    if (typeof v !== 'object' || Array.isArray(v)) return false;
    const obj = v as Record<string, unknown>;
    let empty = true;
    for (const _ in obj) {
      empty = false;
      break;
    }
    if (empty) return false;
    if (slot.type === 'Resource') return this.nestedResource(obj, slot);
    const plan = planFor(slot.type);
    if (!plan) return false;
    return this.invariantsHold(slot.invariants, { type: slot.type, value: v }) && this.object(obj, plan, false);
  }

  /**
   * A contained resource, Bundle entry or Parameters resource. As in Medplum's walk: the element's
   * invariants see the enclosing resource as `%resource`, the nested resource's own elements see the
   * nested one, and the nested resource's type-level invariants (dom-*) are not evaluated.
   */
  private nestedResource(obj: Record<string, unknown>, slot: Slot): boolean {
    const type = obj.resourceType;
    if (typeof type !== 'string' || !isR4ResourceType(type)) return false;
    const plan = planFor(type);
    if (!plan) return false;
    const typed: TypedValue = { type, value: obj };
    if (!this.invariantsHold(slot.invariants, typed)) return false;
    const enclosing = this.variables['%resource'];
    this.variables['%resource'] = typed;
    try {
      return this.object(obj, plan, true);
    } finally {
      this.variables['%resource'] = enclosing;
    }
  }
}

/**
 * True only when Medplum's validator would find no error in `resource` (an object whose resourceType is
 * a known R4 resource type); false means "not sure", never "invalid".
 */
export function certainlyValidR4(resource: Record<string, unknown>): boolean {
  const type = resource.resourceType as string;
  const plan = planFor(type);
  if (!plan) return false;
  const root: TypedValue = { type, value: resource };
  const walk = new QuickWalk(root);
  return walk.invariantsHold(plan.invariants, root) && walk.object(resource, plan, true);
}
