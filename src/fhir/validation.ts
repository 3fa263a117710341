/**
 * Validation of incoming resources against the R4 base definitions. Structure, cardinality, primitive
 * formats and FHIRPath invariants come from @medplum/core's validator; validation-checks.ts adds what it
 * does not check (required bindings, choice conflicts, empty values, narrative safety, dom-3). Every
 * problem becomes one issue of a single CLARION_VALIDATION_FAILED error, with a FHIRPath-style
 * expression that uses the JSON property names (`Observation.valueQuantity.value`, not `value[x]`).
 */
import { evalFhirPathTyped, OperationOutcomeError, validateResource } from '@medplum/core';
import type { TypedValue } from '@medplum/core';
import type { OperationOutcomeIssue, Resource } from 'fhir/r4.js';
import { Errors, fhirErrorFromIssues, type IssueInput } from './errors.js';
import { isR4ResourceType } from './definitions.js';
import { ensureR4Schema, isPrimitiveType, typeSchema, type InternalSchemaElement } from './r4-schema.js';
import { certainlyValidR4 } from './quick-validation.js';
import { ID_PATTERN, supplementaryChecks } from './validation-checks.js';

export { ensureR4Schema as preloadR4Validator };

/**
 * Validates `resource` (parsed JSON) as an R4 resource, optionally of `expectedType`, and returns it
 * typed. Throws a FhirError: notAResource, unknownResourceType, resourceTypeMismatch, invalidId, or
 * validationFailed with one issue per problem.
 */
export function validateR4Resource(resource: unknown, expectedType?: string): Resource {
  if (typeof resource !== 'object' || resource === null || Array.isArray(resource)) {
    const what = resource === null ? 'null' : Array.isArray(resource) ? 'an array' : typeof resource;
    throw Errors.notAResource({ reason: `expected a JSON object, got ${what}` });
  }
  const res = resource as Record<string, unknown>;
  const rt = res.resourceType;
  if (typeof rt !== 'string') {
    throw Errors.notAResource({ reason: rt === undefined ? 'the resourceType property is missing' : 'resourceType must be a string' }, ['resourceType']);
  }
  if (!isR4ResourceType(rt)) throw Errors.unknownResourceType({ type: rt }, ['resourceType']);
  if (expectedType !== undefined && rt !== expectedType) throw Errors.resourceTypeMismatch({ expected: expectedType, actual: rt }, ['resourceType']);
  if (typeof res.id === 'string' && !ID_PATTERN.test(res.id)) throw Errors.invalidId({ id: res.id }, [`${rt}.id`]);

  ensureR4Schema();
  const extra = supplementaryChecks(res);
  // Medplum aborts on an unknown nested resource type with a message that names no location; ours does.
  // Medplum's walk is the costliest part of a write; most resources are valid and the quick walk says so.
  const medplum = extra.unknownNestedType || certainlyValidR4(res) ? [] : medplumIssues(res);
  const issues = dedupe([...medplum, ...extra.issues]);
  if (issues.length > 0) throw fhirErrorFromIssues(Errors.validationFailed, issues);
  return resource as Resource;
}

function medplumIssues(res: Record<string, unknown>): IssueInput[] {
  let raw: OperationOutcomeIssue[];
  try {
    raw = validateResource(res);
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) {
      return [{ diagnostics: `The validator could not process the resource: ${(err as Error).message}` }];
    }
    raw = (err.outcome.issue ?? []) as OperationOutcomeIssue[];
  }
  const out: IssueInput[] = [];
  for (const issue of raw) {
    // Warnings are advisory (reference target types, …); the one warning that is an R4 error (two types
    // of a choice element) is reported by validation-checks.ts with its full path.
    if (issue.severity !== 'error' && issue.severity !== 'fatal') continue;
    const converted = convertIssue(res, issue);
    if (converted) out.push(converted);
  }
  return out;
}

interface Located {
  /** The expression with `[x]` replaced by the concrete JSON property name. */
  path: string;
  element?: InternalSchemaElement;
  /** The concrete type of the element at `path` (resolved for choice and Resource elements). */
  type?: string;
  value?: unknown;
  /** The type whose property the last segment is (for unknown-property messages). */
  parentType?: string;
}

const SEGMENT = /^([^[]+?)(\[x\])?(?:\[(\d+)\])?$/;

/** Follows a Medplum expression (`Observation.value[x].value`, `Bundle.entry[0].resource.id`) in the resource. */
function locate(resource: Record<string, unknown>, expression: string): Located {
  const [root, ...segments] = expression.split('.');
  let value: unknown = resource;
  let type: string | undefined = root;
  let element: InternalSchemaElement | undefined;
  let parentType: string | undefined;
  const parts = [root];
  for (const seg of segments) {
    const m = SEGMENT.exec(seg);
    const schema = type && !isPrimitiveType(type) ? typeSchema(type) : undefined;
    parentType = type;
    if (!m || !schema || typeof value !== 'object' || value === null) {
      parts.push(seg);
      type = undefined;
      element = undefined;
      value = undefined;
      continue;
    }
    const [, name, choice, index] = m;
    const obj = value as Record<string, unknown>;
    let key = name;
    element = schema.elements[choice ? `${name}[x]` : name];
    type = element?.type[0]?.code;
    if (choice && element) {
      const found = element.type.find((t) => `${name}${t.code.charAt(0).toUpperCase()}${t.code.slice(1)}` in obj);
      if (found) {
        key = `${name}${found.code.charAt(0).toUpperCase()}${found.code.slice(1)}`;
        type = found.code;
      }
    }
    value = obj[key];
    if (index !== undefined) value = Array.isArray(value) ? value[Number(index)] : undefined;
    if (type === 'Resource' && typeof value === 'object' && value !== null) {
      const rt = (value as Record<string, unknown>).resourceType;
      type = typeof rt === 'string' ? rt : undefined;
    }
    parts.push(index !== undefined ? `${key}[${index}]` : key);
  }
  return { path: parts.join('.'), element, type, value, parentType };
}

const FORMAT_HINTS: Record<string, string> = {
  date: 'YYYY, YYYY-MM or YYYY-MM-DD',
  dateTime: 'YYYY, YYYY-MM, YYYY-MM-DD or YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm)',
  instant: 'YYYY-MM-DDThh:mm:ss[.fff](Z|+hh:mm|-hh:mm)',
  time: 'hh:mm:ss[.fff]',
  code: 'a non-empty token without leading, trailing or repeated whitespace',
  id: '1 to 64 characters among A-Z a-z 0-9 - .',
  uri: 'a URI without whitespace',
  url: 'a URL without whitespace',
  canonical: 'a canonical URL without whitespace',
  oid: 'urn:oid:<dotted digits>',
  uuid: 'urn:uuid:<lower-case UUID>',
  base64Binary: 'base64 data',
  string: 'text without control characters other than tab, CR and LF',
  markdown: 'text without control characters other than tab, CR and LF',
};

function cardinality(el: InternalSchemaElement | undefined): string {
  if (!el) return '';
  return ` (cardinality ${el.min}..${Number.isFinite(el.max) ? el.max : '*'})`;
}

function show(v: unknown): string {
  const s = typeof v === 'string' ? `'${v}'` : JSON.stringify(v);
  return s === undefined ? '' : s.length > 80 ? `${s.slice(0, 77)}…` : s;
}

function convertIssue(res: Record<string, unknown>, issue: OperationOutcomeIssue): IssueInput | undefined {
  const text = issue.details?.text ?? issue.diagnostics ?? 'invalid';
  const expr = issue.expression?.[0];
  if (!expr) return { diagnostics: text, code: issue.code };
  const at = locate(res, expr);
  const p = at.path;
  const base = { expression: [p], code: 'structure' as const };

  // Not R4 rules: Medplum's own size limit (the HTTP body limit governs size), and its base64 pattern,
  // which rejects the line breaks and spaces that R4 base64Binary allows (and several examples use).
  if (text === 'String cannot be larger than 1 MB') return undefined;
  if (text === 'Invalid base64Binary format' && typeof at.value === 'string' && BASE64.test(at.value.replace(/\s+/g, ''))) return undefined;

  if (text === 'Missing required property') return { ...base, code: 'required', diagnostics: `${p}: required element is missing${cardinality(at.element)}` };
  if (text === 'Expected single value for property') return { ...base, diagnostics: `${p}: at most one value is allowed${cardinality(at.element)}, but an array was sent` };
  if (text === 'Expected array of values for property') return { ...base, diagnostics: `${p}: the element repeats${cardinality(at.element)} and must be a JSON array` };
  if (text.startsWith('Invalid number of values')) return { ...base, diagnostics: `${p}: ${text}` };
  if (text === 'Invalid null value') return { ...base, diagnostics: `${p}: null is not allowed (omit the element instead)` };
  if (text === 'Invalid empty non-primitive value' || text === 'Invalid empty value') return { ...base, diagnostics: `${p}: an empty object is not allowed (omit the element instead)` };
  const extra = /^Invalid additional property "(.*)"$/.exec(text);
  if (extra) return { ...base, diagnostics: `${p}: '${extra[1]}' is not an element of ${at.parentType ?? 'its parent'}` };
  const fmt = /^Invalid (\w+) format$/.exec(text);
  if (fmt) {
    const hint = FORMAT_HINTS[fmt[1]];
    return { ...base, code: 'value', diagnostics: `${p}: ${show(at.value)} is not a valid ${fmt[1]}${hint ? `; expected ${hint}` : ''}` };
  }
  const jsonType = /^Invalid JSON type: expected (\w+), but got (\w+)$/.exec(text);
  if (jsonType) return { ...base, code: 'value', diagnostics: `${p}: ${at.type ?? 'the element'} must be a JSON ${jsonType[1]}, got a ${jsonType[2]} (${show(at.value)})` };
  if (text.startsWith('Expected number') || text === 'Invalid numeric value' || text === 'String must contain non-whitespace content') {
    return { ...base, code: 'value', diagnostics: `${p}: ${show(at.value)}: ${text.charAt(0).toLowerCase()}${text.slice(1)}` };
  }
  if (issue.code === 'invariant') {
    const fhirpath = parseFhirPath(issue.diagnostics);
    if (fhirpath && invariantIsEmpty(res, at, fhirpath)) return undefined;
    return { ...base, code: 'invariant', diagnostics: `${p}: ${text.replace(/^Constraint (\S+) not met: /, 'constraint $1 violated: ')}${fhirpath ? ` [${fhirpath}]` : ''}` };
  }
  return { ...base, code: issue.code, diagnostics: `${p}: ${text}` };
}

const BASE64 = /^([A-Za-z\d+/]{4})*([A-Za-z\d+/]{2}==|[A-Za-z\d+/]{3}=)?$/;

function parseFhirPath(diagnostics: string | undefined): string | undefined {
  if (!diagnostics) return undefined;
  try {
    const v = JSON.parse(diagnostics) as { fhirpath?: unknown };
    return typeof v.fhirpath === 'string' ? v.fhirpath : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Medplum fails an invariant unless it evaluates to exactly `true`. An empty result is not a violation
 * for the HL7 reference validator (e.g. ras-2 `probability is decimal implies …` on a prediction
 * without probability), and the R4 examples rely on that.
 */
function invariantIsEmpty(res: Record<string, unknown>, at: Located, fhirpath: string): boolean {
  if (at.value === undefined || !at.type) return false;
  const resource: TypedValue = { type: res.resourceType as string, value: res };
  const context: TypedValue = { type: at.type, value: at.value };
  try {
    const result = evalFhirPathTyped(fhirpath, [context], { '%resource': resource, '%rootResource': resource, '%context': context });
    return result.length === 0;
  } catch {
    return false;
  }
}

function dedupe(issues: IssueInput[]): IssueInput[] {
  const seen = new Set<string>();
  return issues.filter((i) => {
    if (seen.has(i.diagnostics)) return false;
    seen.add(i.diagnostics);
    return true;
  });
}
