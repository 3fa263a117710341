/**
 * The JSON side of the XML content check: turns the converter's raw output into FHIR JSON (decimal
 * markers → numbers, XML comments dropped) and counts its content per path in the XML's terms, so
 * that every element and attribute of the XML document can be matched with something in the result.
 *
 * XML ↔ JSON correspondence (FHIR R4, "JSON representation"):
 * - a primitive `x: v` (or array item) is one element `<x value="v"/>`: path `x` and `x@value`; its
 *   `_x` companion (`id`, `extension`) belongs to the same element; `_x` without `x` is an element
 *   without value attribute;
 * - `id` of anything but a resource, and `url` of an extension, are attributes;
 * - a complex value is one element; a resource inside an element (contained, Bundle.entry.resource)
 *   is the wrapper element plus an element named after its resourceType;
 * - the narrative `div` is one element (its XHTML is a string on both sides).
 */
import { isDecimalMarker } from './fhir-converter.js';
import { countAt, type ContentCounts } from './xml-structure.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** In place: decimals as numbers, no `fhir_comments`, no `_x` companions left empty by that. */
export function normalizeConverted<T>(value: T): T {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = normalizeConverted(value[i]);
    return value;
  }
  if (isDecimalMarker(value)) return Number(value.value) as T;
  if (!isObj(value)) return value;
  const obj: Obj = value;
  delete obj.fhir_comments;
  for (const key of Object.keys(obj)) {
    const v = normalizeConverted(obj[key]);
    // The reader leaves `x: []` for repeats that only have extensions (`<event><extension…/></event>`).
    if (Array.isArray(v) && v.length === 0) delete obj[key];
    else obj[key] = v;
    if (key.startsWith('_')) dropEmptyCompanion(obj, key);
  }
  return value;
}

const isEmpty = (v: unknown): boolean => v === null || v === undefined || (isObj(v) && Object.keys(v).length === 0);

/** A `_x` that held only comments: `{}` → removed; `[{}, {…}]` → `[null, {…}]`; all empty → removed. */
function dropEmptyCompanion(obj: Obj, key: string): void {
  const v = obj[key];
  if (Array.isArray(v)) {
    // Array.from turns holes (left by the converter's comment handling) into undefined.
    const items = Array.from(v, (item: unknown) => (isEmpty(item) ? null : item));
    if (items.every((item) => item === null)) delete obj[key];
    else obj[key] = items;
  } else if (isEmpty(v)) {
    delete obj[key];
  }
}

/** Content counts of a resource (normalized converter output), keyed like readXmlContent's. */
export function countJsonContent(resource: Obj): ContentCounts {
  const counts: ContentCounts = new Map();
  countResource(resource, String(resource.resourceType), counts);
  return counts;
}

type Context = 'resource' | 'element' | 'extension';

/**
 * The R4 elements of type Resource (DomainResource.contained, Bundle.entry.resource and
 * .response.outcome, Parameters.parameter.resource). Going by name, not by a `resourceType` key:
 * ExampleScenario.instance has a `resourceType` element of its own.
 */
const RESOURCE_ELEMENTS: ReadonlySet<string> = new Set(['contained', 'resource', 'outcome']);

function countResource(resource: Obj, path: string, counts: ContentCounts): void {
  countAt(counts, path);
  for (const key of Object.keys(resource)) if (key !== 'resourceType') countMember(resource, key, path, 'resource', counts);
}

function countMember(obj: Obj, key: string, path: string, context: Context, counts: ContentCounts): void {
  if (key.startsWith('_')) {
    const base = key.slice(1);
    if (obj[base] !== undefined) return; // counted with its value
    const p = `${path}.${base}`;
    for (const extra of Array.isArray(obj[key]) ? (obj[key] as unknown[]) : [obj[key]]) {
      if (extra === null || extra === undefined) continue;
      countAt(counts, p);
      countCompanion(extra, p, counts);
    }
    return;
  }
  const value = obj[key];
  if (context !== 'resource' && key === 'id' && typeof value === 'string') return countAt(counts, `${path}@id`);
  if (context === 'extension' && key === 'url' && typeof value === 'string') return countAt(counts, `${path}@url`);
  const p = `${path}.${key}`;
  const companion = obj[`_${key}`];
  if (Array.isArray(value)) {
    value.forEach((item, i) => countValue(item, p, key, Array.isArray(companion) ? companion[i] : undefined, counts));
  } else {
    countValue(value, p, key, companion, counts);
  }
}

function countValue(value: unknown, path: string, key: string, companion: unknown, counts: ContentCounts): void {
  if (value === null || value === undefined) {
    if (companion !== null && companion !== undefined) {
      countAt(counts, path);
      countCompanion(companion, path, counts);
    }
    return;
  }
  countAt(counts, path);
  if (isObj(value)) {
    if (RESOURCE_ELEMENTS.has(key) && typeof value.resourceType === 'string') return countResource(value, `${path}.${value.resourceType}`, counts);
    const context: Context = key === 'extension' || key === 'modifierExtension' ? 'extension' : 'element';
    for (const k of Object.keys(value)) countMember(value, k, path, context, counts);
    return;
  }
  if (key === 'div') return; // XHTML narrative: one element, content not accounted
  countAt(counts, `${path}@value`);
  countCompanion(companion, path, counts);
}

function countCompanion(companion: unknown, path: string, counts: ContentCounts): void {
  if (!isObj(companion)) return;
  if (typeof companion.id === 'string') countAt(counts, `${path}@id`);
  if (Array.isArray(companion.extension)) {
    for (const ext of companion.extension) countValue(ext, `${path}.extension`, 'extension', undefined, counts);
  }
}
