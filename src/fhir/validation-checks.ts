/**
 * Checks that @medplum/core's validator does not make, run as one walk over the resource guided by the
 * R4 schema: required bindings on `code` elements, more than one type of a choice element (Medplum only
 * warns), empty strings / arrays / objects (FHIR JSON forbids them; Medplum lets several through), ids of
 * nested resources, unknown nested resource types (Medplum aborts without saying where), narrative
 * XHTML safety (txt-1/txt-2, which Medplum skips) and dom-3 (contained resources must be referenced,
 * which Medplum skips).
 */
import type { IssueInput } from './errors.js';
import { isR4ResourceType } from './definitions.js';
import {
  isPrimitiveType,
  jsonProperties,
  requiredBindingCodes,
  requireTypeSchema,
  typeSchema,
  type InternalSchemaElement,
  type InternalTypeSchema,
} from './r4-schema.js';

export const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

interface PropInfo {
  /** The concrete type of this JSON property (`Quantity` for `valueQuantity`). */
  type: string;
  primitive: boolean;
  element: InternalSchemaElement;
  /** For choice elements, the name without the type suffix (`value`). */
  choiceBase?: string;
  codes?: ReadonlySet<string>;
}

const plans = new Map<string, Map<string, PropInfo>>();

function planFor(schema: InternalTypeSchema): Map<string, PropInfo> {
  let plan = plans.get(schema.name);
  if (plan) return plan;
  plan = new Map();
  for (const [key, element] of Object.entries(schema.elements)) {
    const choiceBase = key.endsWith('[x]') ? key.slice(0, -3) : undefined;
    for (const { name, type } of jsonProperties(key, element)) {
      const codes = choiceBase === undefined && type === 'code' ? requiredBindingCodes(element) : undefined;
      plan.set(name, { type, primitive: isPrimitiveType(type), element, ...(choiceBase !== undefined ? { choiceBase } : {}), ...(codes ? { codes } : {}) });
    }
  }
  plans.set(schema.name, plan);
  return plan;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeCodes(codes: ReadonlySet<string>): string {
  const list = [...codes];
  return list.length <= 30 ? list.join(', ') : `${list.slice(0, 30).join(', ')}, … (${list.length} codes)`;
}

// R4 txt-1: only basic HTML formatting. These are the elements and attributes that make narrative
// active content (stored XSS in any client that renders it) or are outside the allowed HTML subset.
const FORBIDDEN_TAG = /<\s*(script|style|form|input|button|select|textarea|iframe|frame|frameset|object|embed|applet|base|link|meta|head|body|html)\b/i;
const EVENT_ATTRIBUTE = /<[^>]*\son[a-z]+\s*=/i;
const SCRIPT_URL = /\b(?:href|src)\s*=\s*["']?\s*(?:javascript|vbscript|data:text\/html)/i;
const DIV_START = /^\s*<div\b([^>]*)>/;
const XHTML_NS = /\bxmlns\s*=\s*["']http:\/\/www\.w3\.org\/1999\/xhtml["']/;

export function checkXhtml(div: string): string | undefined {
  const start = DIV_START.exec(div);
  if (!start || !/<\/div>\s*$/.test(div)) return 'must be a single XHTML <div> element';
  if (!XHTML_NS.test(start[1])) return 'the <div> must declare xmlns="http://www.w3.org/1999/xhtml"';
  const tag = FORBIDDEN_TAG.exec(div);
  if (tag) return `<${tag[1].toLowerCase()}> is not allowed in narrative (txt-1: only basic HTML formatting)`;
  if (EVENT_ATTRIBUTE.test(div)) return 'event handler attributes (on…) are not allowed in narrative (txt-1)';
  if (SCRIPT_URL.test(div)) return 'script URLs are not allowed in narrative (txt-1)';
  if (!/<img\b/i.test(div) && div.replace(/<[^>]*>/g, '').trim() === '') return 'narrative must have some non-whitespace content (txt-2)';
  return undefined;
}

/** Every string in a resource equal to `#id`-style local references, for dom-3. */
function collectLocalRefs(v: unknown, into: Set<string>): void {
  if (typeof v === 'string') {
    if (v.startsWith('#')) into.add(v);
  } else if (Array.isArray(v)) {
    for (const x of v) collectLocalRefs(x, into);
  } else if (isPlainObject(v)) {
    for (const x of Object.values(v)) collectLocalRefs(x, into);
  }
}

class Walker {
  readonly issues: IssueInput[] = [];
  /** Set when a nested resource has an unknown type: Medplum would then abort without a location. */
  unknownNestedType = false;

  private add(path: string, diagnostics: string, code: IssueInput['code'] = 'structure'): void {
    this.issues.push({ diagnostics: `${path}: ${diagnostics}`, expression: [path], code });
  }

  resource(res: Record<string, unknown>, path: string, nested: boolean): void {
    const rt = res.resourceType;
    if (typeof rt !== 'string' || !isR4ResourceType(rt)) {
      this.unknownNestedType = true;
      const what = typeof rt === 'string' ? `'${rt}' is not an R4 resource type` : 'a nested resource needs a string resourceType';
      this.add(path, what, 'not-supported');
      return;
    }
    if (nested && typeof res.id === 'string' && !ID_PATTERN.test(res.id)) {
      this.add(`${path}.id`, `'${res.id}' is not a valid id ([A-Za-z0-9\\-\\.]{1,64})`, 'value');
    }
    this.object(res, requireTypeSchema(rt), path);
    if (Array.isArray(res.contained) && res.contained.length > 0) this.dom3(res, path);
  }

  private dom3(res: Record<string, unknown>, path: string): void {
    const refs = new Set<string>();
    for (const [k, v] of Object.entries(res)) if (k !== 'contained') collectLocalRefs(v, refs);
    const contained = res.contained as unknown[];
    for (const c of contained) if (isPlainObject(c)) collectLocalRefs(c, refs);
    contained.forEach((c, i) => {
      if (!isPlainObject(c)) return;
      const id = typeof c.id === 'string' ? c.id : undefined;
      if (id !== undefined && refs.has(`#${id}`)) return;
      const refsContainer = new Set<string>();
      collectLocalRefs(c, refsContainer);
      if (refsContainer.has('#')) return;
      this.add(
        `${path}.contained[${i}]`,
        id === undefined
          ? 'a contained resource needs an id and must be referenced from its container (dom-3)'
          : `contained resource '${id}' is not referenced as '#${id}' from the container, nor does it reference the container as '#' (dom-3)`,
        'invariant',
      );
    });
  }

  private object(obj: Record<string, unknown>, schema: InternalTypeSchema, path: string): void {
    const plan = planFor(schema);
    let choices: Map<string, string> | undefined;
    for (const [key, value] of Object.entries(obj)) {
      if (key === 'resourceType') continue;
      if (key.charCodeAt(0) === 95 /* _ */) {
        if (plan.has(key.slice(1))) this.primitiveElement(value, `${path}.${key}`);
        continue;
      }
      const info = plan.get(key);
      if (!info) continue; // Medplum reports unknown properties
      if (info.choiceBase !== undefined) {
        choices ??= new Map();
        const other = choices.get(info.choiceBase);
        if (other !== undefined) {
          this.add(`${path}.${key}`, `only one type of ${info.choiceBase}[x] is allowed, but both '${other}' and '${key}' are present`);
        } else {
          choices.set(info.choiceBase, key);
        }
      }
      const p = `${path}.${key}`;
      if (Array.isArray(value)) {
        if (value.length === 0) this.add(p, 'an empty array is not allowed (omit the element instead)');
        for (let i = 0; i < value.length; i++) this.value(value[i], info, `${p}[${i}]`);
      } else {
        this.value(value, info, p);
      }
    }
  }

  private value(v: unknown, info: PropInfo, path: string): void {
    if (v === null || v === undefined) return;
    if (info.primitive) {
      if (typeof v !== 'string') return;
      if (v === '') {
        this.add(path, 'an empty string is not allowed (omit the element instead)', 'value');
      } else if (info.codes && !info.codes.has(v)) {
        const vs = info.element.binding?.valueSet?.split('|')[0];
        this.add(path, `'${v}' is not in the required value set ${vs}; accepted codes: ${describeCodes(info.codes)}`, 'code-invalid');
      } else if (info.type === 'xhtml') {
        const problem = checkXhtml(v);
        if (problem) this.add(path, problem, 'value');
      }
      return;
    }
    if (!isPlainObject(v)) return; // Medplum reports the JSON type mismatch
    if (Object.keys(v).length === 0) {
      this.add(path, 'an empty object is not allowed (omit the element instead)');
      return;
    }
    if (info.type === 'Resource') {
      this.resource(v, path, true);
      return;
    }
    const schema = typeSchema(info.type);
    if (schema) this.object(v, schema, path);
  }

  /** `_name` carries the id/extensions of a primitive: an object, or an array parallel to the values. */
  private primitiveElement(v: unknown, path: string): void {
    const element = requireTypeSchema('Element');
    const check = (x: unknown, p: string) => {
      if (!isPlainObject(x)) return;
      if (Object.keys(x).length === 0) this.add(p, 'an empty object is not allowed (omit the element instead)');
      else this.object(x, element, p);
    };
    if (Array.isArray(v)) {
      if (v.length === 0) this.add(path, 'an empty array is not allowed (omit the element instead)');
      v.forEach((x, i) => check(x, `${path}[${i}]`));
    } else {
      check(v, path);
    }
  }
}

/** Runs the supplementary checks on a resource whose top-level resourceType is a known R4 type. */
export function supplementaryChecks(resource: Record<string, unknown>): { issues: IssueInput[]; unknownNestedType: boolean } {
  const w = new Walker();
  w.resource(resource, resource.resourceType as string, false);
  return { issues: w.issues, unknownNestedType: w.unknownNestedType };
}
