/**
 * RFC 6902 JSON Patch for FHIR PATCH. Written here rather than taken from a library: none is installed
 * (@medplum/core bundles no patch code and `rfc6902` is not in node_modules), and the FHIR use needs
 * errors that name the failing operation, its pointer and the reason, plus refusal of identity changes.
 * The patch applies atomically to a copy; the caller validates the result.
 */
import type { Resource } from 'fhir/r4.js';
import { Errors } from './errors.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Container = Json[] | { [k: string]: Json };

const OPS = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);
const ARRAY_INDEX = /^(0|[1-9][0-9]*)$/;

class PatchFailure extends Error {}

function parsePointer(pointer: unknown, member: string): string[] {
  if (typeof pointer !== 'string') throw new PatchFailure(`'${member}' must be a JSON Pointer string`);
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw new PatchFailure(`'${member}' ${JSON.stringify(pointer)} is not a JSON Pointer (it must be empty or start with '/')`);
  return pointer
    .slice(1)
    .split('/')
    .map((t) => {
      if (/~[^01]|~$/.test(t)) throw new PatchFailure(`'${member}' ${JSON.stringify(pointer)} has an invalid escape ('~' must be followed by 0 or 1)`);
      return t.replace(/~1/g, '/').replace(/~0/g, '~');
    });
}

function isContainer(v: Json | undefined): v is Container {
  return typeof v === 'object' && v !== null;
}

function hasOwn(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

/** Resolves all tokens but the last: the container the operation acts on. */
function parentOf(doc: Json, tokens: string[], pointer: string): Container {
  let cur: Json = doc;
  for (let i = 0; i < tokens.length - 1; i++) {
    const next = child(cur, tokens[i]);
    if (next === undefined) throw new PatchFailure(`path ${JSON.stringify(pointer)} does not exist (no ${JSON.stringify('/' + tokens.slice(0, i + 1).join('/'))})`);
    cur = next;
  }
  if (!isContainer(cur)) throw new PatchFailure(`path ${JSON.stringify(pointer)} goes through a ${typeof cur} value`);
  return cur;
}

function child(cur: Json, token: string): Json | undefined {
  if (Array.isArray(cur)) return ARRAY_INDEX.test(token) ? cur[Number(token)] : undefined;
  if (isContainer(cur)) return hasOwn(cur, token) ? cur[token] : undefined;
  return undefined;
}

function get(doc: Json, tokens: string[], pointer: string): Json {
  if (tokens.length === 0) return doc;
  const v = child(parentOf(doc, tokens, pointer), tokens[tokens.length - 1]);
  if (v === undefined) throw new PatchFailure(`path ${JSON.stringify(pointer)} does not exist`);
  return v;
}

function arrayIndex(arr: Json[], token: string, pointer: string, allowEnd: boolean): number {
  if (allowEnd && token === '-') return arr.length;
  if (!ARRAY_INDEX.test(token)) throw new PatchFailure(`${JSON.stringify(token)} in ${JSON.stringify(pointer)} is not an array index`);
  const i = Number(token);
  if (i > arr.length || (!allowEnd && i === arr.length)) throw new PatchFailure(`index ${i} in ${JSON.stringify(pointer)} is out of bounds (array length ${arr.length})`);
  return i;
}

/** Returns the new document (only differs from `doc` when the pointer is the whole document). */
function add(doc: Json, tokens: string[], pointer: string, value: Json): Json {
  if (tokens.length === 0) return value;
  const parent = parentOf(doc, tokens, pointer);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, last, pointer, true), 0, value);
  // defineProperty, not assignment: a "__proto__" member must stay data, never change the prototype.
  else Object.defineProperty(parent, last, { value, writable: true, enumerable: true, configurable: true });
  return doc;
}

function remove(doc: Json, tokens: string[], pointer: string): Json {
  if (tokens.length === 0) throw new PatchFailure('the whole document cannot be removed');
  const parent = parentOf(doc, tokens, pointer);
  const last = tokens[tokens.length - 1];
  if (Array.isArray(parent)) {
    const removed = parent.splice(arrayIndex(parent, last, pointer, false), 1);
    return removed[0];
  }
  if (!hasOwn(parent, last)) throw new PatchFailure(`path ${JSON.stringify(pointer)} does not exist`);
  const v = parent[last];
  delete parent[last];
  return v;
}

function deepEqual(a: Json, b: Json): boolean {
  if (a === b) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  }
  if (!isContainer(a) || !isContainer(b)) return false;
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => hasOwn(b, k) && deepEqual(a[k], b[k]));
}

function applyOne(doc: Json, op: Record<string, unknown>): Json {
  const tokens = parsePointer(op.path, 'path');
  const pointer = op.path as string;
  const needValue = () => {
    if (!('value' in op) || op.value === undefined) throw new PatchFailure(`'${op.op as string}' requires a 'value' member`);
    return structuredClone(op.value) as Json;
  };
  switch (op.op) {
    case 'add':
      return add(doc, tokens, pointer, needValue());
    case 'remove':
      remove(doc, tokens, pointer);
      return doc;
    case 'replace': {
      const value = needValue();
      get(doc, tokens, pointer); // the target must exist
      if (tokens.length === 0) return value;
      const parent = parentOf(doc, tokens, pointer);
      const last = tokens[tokens.length - 1];
      if (Array.isArray(parent)) parent[arrayIndex(parent, last, pointer, false)] = value;
      else Object.defineProperty(parent, last, { value, writable: true, enumerable: true, configurable: true });
      return doc;
    }
    case 'move': {
      const from = parsePointer(op.from, 'from');
      if (from.length < tokens.length && from.every((t, i) => t === tokens[i])) {
        throw new PatchFailure(`cannot move ${JSON.stringify(op.from)} into its own child ${JSON.stringify(pointer)}`);
      }
      if (from.length === tokens.length && from.every((t, i) => t === tokens[i])) return doc;
      const value = remove(doc, from, op.from as string);
      return add(doc, tokens, pointer, value);
    }
    case 'copy': {
      const from = parsePointer(op.from, 'from');
      return add(doc, tokens, pointer, structuredClone(get(doc, from, op.from as string)));
    }
    default: {
      const expected = needValue();
      const actual = get(doc, tokens, pointer);
      if (!deepEqual(actual, expected)) throw new PatchFailure(`test failed: the value at ${JSON.stringify(pointer)} is ${JSON.stringify(actual)}, not ${JSON.stringify(expected)}`);
      return doc;
    }
  }
}

/** `/name/0/given` → `Patient.name[0].given`, for the OperationOutcome expression. */
function pointerExpression(resourceType: string, pointer: unknown): string[] | undefined {
  if (typeof pointer !== 'string' || !pointer.startsWith('/')) return undefined;
  const parts = pointer.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  return [resourceType + parts.map((t) => (ARRAY_INDEX.test(t) || t === '-' ? `[${t}]` : `.${t}`)).join('')];
}

/**
 * Applies an RFC 6902 patch document to a copy of `resource`. Throws invalidPatch (naming the operation
 * index, its path and why) or patchChangesIdentity; the input resource is never modified.
 */
export function applyJsonPatch(resource: Resource, operations: unknown): Resource {
  if (!Array.isArray(operations)) throw Errors.invalidPatch({ message: 'the patch document must be a JSON array of operations' });
  let doc = structuredClone(resource) as unknown as Json;
  operations.forEach((op: unknown, index) => {
    if (typeof op !== 'object' || op === null || Array.isArray(op)) {
      throw Errors.invalidPatch({ message: `operation ${index} is not a JSON object` });
    }
    const o = op as Record<string, unknown>;
    if (typeof o.op !== 'string' || !OPS.has(o.op)) {
      throw Errors.invalidPatch({ message: `operation ${index}: 'op' must be one of add, remove, replace, move, copy, test (got ${JSON.stringify(o.op)})` });
    }
    try {
      doc = applyOne(doc, o);
    } catch (err) {
      if (!(err instanceof PatchFailure)) throw err;
      const path = typeof o.path === 'string' ? ` ${JSON.stringify(o.path)}` : '';
      throw Errors.invalidPatch({ message: `operation ${index} (${o.op}${path}): ${err.message}` }, pointerExpression(resource.resourceType, o.path));
    }
  });
  const result = doc as unknown as Resource;
  if (!isContainer(doc) || Array.isArray(doc) || result.resourceType !== resource.resourceType || result.id !== resource.id) {
    throw Errors.patchChangesIdentity({});
  }
  return result;
}
