/**
 * Decides whether a committed change fires a SubscriptionTopic (R5 `resourceTrigger` semantics) and
 * computes the extra resources its `notificationShape` asks for. Topics are compiled once
 * (`compileTopic`: query criteria parsed by the search engine, FHIRPath compiled by fhirpath.js); the
 * change-feed consumer then calls `evaluateTriggers` for every change.
 *
 * Semantics (R5 SubscriptionTopic definitions):
 * - several resourceTriggers are OR-ed: the topic fires when any trigger fires;
 * - a trigger applies to its resource type (a type name or a core StructureDefinition URL) and to its
 *   supportedInteraction (none listed = every interaction);
 * - queryCriteria: `previous` is tested on the state before the change, `current` on the state after.
 *   On create (or an update whose previous version the caller does not have) there is no previous
 *   state: the `previous` test counts as `resultForCreate`; on delete
 *   there is no current state: the `current` test counts as `resultForDelete`. `requireBoth` = every
 *   declared test must pass, otherwise one passing test is enough. A test that is not declared takes
 *   no part (an empty string counts as not declared). When a declared test has no state to run on and
 *   no resultFor… is given ("server discretion" in R5) it takes no part either; if that leaves no test
 *   at all the criteria fail (Clarion never notifies on a guess);
 * - fhirPathCriteria: evaluated with `%previous` and `%current` (empty when there is no such state),
 *   the context (`$this`, `%resource`) being the current state, or the previous one on delete. It passes
 *   when the result is `true` (or a single non-Boolean item, FHIRPath singleton evaluation); evaluation
 *   errors count as not passing;
 * - a trigger with both queryCriteria and fhirPathCriteria fires only when both pass. The published
 *   topics state one condition twice (query and FHIRPath encodings of the same state change), so AND is
 *   the reading that never notifies more than either encoding says. (fhir-candle evaluates only the
 *   FHIRPath when both are present; with equivalent encodings the results agree.) A criterion Clarion
 *   cannot evaluate at all (unsupported search modifier such as `:in`, FHIRPath needing a terminology
 *   service such as `memberOf`, syntax errors) is left out and reported in `problems`; a trigger none of
 *   whose declared criteria can be evaluated never fires.
 */
import fhirpath from 'fhirpath';
import r4Model from 'fhirpath/fhir-context/r4/index.js';
import type { Resource } from 'fhir/r4.js';
import { getSearchParam, referenceParamsFor } from '../fhir/search/params.js';
import { MAX_COUNT, parseSearchRequest } from '../fhir/search/parse.js';
import { matchesSearch, type MatchOptions } from '../fhir/search/match.js';
import { extractSearchIndex } from '../fhir/search/extract.js';
import type { IncludeSpec, ParsedSearch, SearchFilter, SearchIndex } from '../fhir/search/types.js';
import { topicKey, type CriteriaResult, type SubscriptionTopic, type TriggerInteraction } from './topic-model.js';
import { compileStateChangeFhirPath } from './state-change-fhirpath.js';
import { resourceTypeOf } from './topic-rules.js';

type FhirPathFn = (resource: unknown, env: Record<string, unknown>) => unknown[];

export interface CompiledQueryTest {
  /** The criteria string as written in the topic. */
  source: string;
  filters: SearchFilter[];
}

export interface CompiledQueryCriteria {
  /** Undefined = the test is not declared (or could not be compiled, see `problems`). */
  previous?: CompiledQueryTest;
  current?: CompiledQueryTest;
  resultForCreate?: CriteriaResult;
  resultForDelete?: CriteriaResult;
  requireBoth: boolean;
}

export interface CompiledTrigger {
  /** Resource type name the trigger applies to. */
  resourceType: string;
  /** Undefined = every interaction. */
  interactions?: ReadonlySet<TriggerInteraction>;
  query?: CompiledQueryCriteria;
  fhirPath?: {
    expression: string;
    evaluate: FhirPathFn;
    /** The same expression evaluated directly, when it is in that subset (state-change-fhirpath.ts). */
    direct?: (previous: unknown, current: unknown) => unknown[] | undefined;
  };
  /** False when the trigger declares criteria none of which could be compiled: it never fires. */
  evaluable: boolean;
}

/** One `_include` directive of a notification shape, with the `iterate` directives attached to it. */
export interface CompiledInclude {
  /** Reference search parameter code of the focus type, or `*` for all of them. */
  param: string;
  targetType?: string;
  /** `…&iterate=Patient.link` parts: includes to follow from the included resources (need the database). */
  iterate: IncludeSpec[];
}

export interface CompiledShape {
  include: CompiledInclude[];
  /** `_revinclude` directives (`Observation:subject`). */
  revInclude: IncludeSpec[];
}

export interface CompiledTopic {
  topic: SubscriptionTopic;
  url: string;
  version?: string;
  /** Registry key `url|version` (or `url`). */
  key: string;
  triggers: CompiledTrigger[];
  /** Resource types of the triggers, without duplicates. */
  resourceTypes: string[];
  /** Notification shapes by focus resource type. */
  shapes: Map<string, CompiledShape>;
  /** What could not be compiled (the affected criteria are left out, see the module comment). */
  problems: string[];
}

export interface TriggerChange {
  resourceType: string;
  interaction: TriggerInteraction;
  /** State before the change (absent on create). */
  previous?: Resource;
  /** State after the change (absent on delete). */
  current?: Resource;
}

export interface EvaluateOptions {
  /** Precomputed search indexes of `previous` / `current` (saves extracting them again). */
  previousIndex?: SearchIndex;
  currentIndex?: SearchIndex;
  /** For chained parameters in query criteria (synchronous `Type/id` → resource). */
  resolve?: MatchOptions['resolve'];
  /** "now" for date `ap` comparisons. */
  now?: number;
}

// ---------------------------------------------------------------------------------------------------
// Compilation

/** `Encounter?status=finished`, `?status=finished` or `status=finished` → name/value pairs. */
function queryPairs(source: string, resourceType: string): [string, string][] {
  let q = source.trim();
  const question = q.indexOf('?');
  if (question >= 0) {
    const prefix = q.slice(0, question);
    const type = prefix === '' ? resourceType : resourceTypeOf(prefix);
    if (type !== resourceType) throw new Error(`names resource type '${prefix}' but the trigger is for ${resourceType}`);
    q = q.slice(question + 1);
  }
  const decode = (s: string): string => {
    try {
      return decodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const pairs: [string, string][] = [];
  for (const part of q.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`'${part}' is not name=value`);
    pairs.push([decode(part.slice(0, eq)), decode(part.slice(eq + 1))]);
  }
  return pairs;
}

function compileQueryTest(source: string | undefined, resourceType: string, where: string, problems: string[]): CompiledQueryTest | undefined {
  if (source === undefined || source.trim() === '') return undefined;
  try {
    const search = parseSearchRequest(resourceType, queryPairs(source, resourceType), { strict: true });
    if (search.filters.some((f) => f.chain)) problems.push(`${where} '${source}': chained parameters are evaluated only when the caller passes a resolver`);
    return { source, filters: search.filters };
  } catch (err) {
    problems.push(`${where} '${source}' cannot be evaluated: ${(err as Error).message}`);
    return undefined;
  }
}

/**
 * Published topics write "previous is empty OR previous status differs" as a union:
 * `(%previous.empty() | (%previous.status != 'finished'))`. A union of two Boolean singletons is a
 * two-item collection when they differ, which `and` rejects (singleton required), so the trigger
 * would never fire on a real state change. Where the union is defined the result equals `or`, so
 * a `|` whose left operand is a Boolean function call (`empty()`, `exists()`, `not()`, `hasValue()`)
 * is read as `or`. Unions of other values (`status in ('a' | 'b')`) are untouched.
 */
export function rewriteBooleanUnion(expression: string): string {
  let out = '';
  let quote = false;
  for (let i = 0; i < expression.length; i++) {
    const c = expression[i];
    if (quote) {
      out += c;
      if (c === '\\') out += expression[++i] ?? '';
      else if (c === "'") quote = false;
      continue;
    }
    if (c === "'") quote = true;
    if (c === '|' && /\.(?:empty|exists|not|hasValue)\(\)\s*$/.test(out)) {
      out += 'or';
      continue;
    }
    out += c;
  }
  return out;
}

/** FHIRPath functions fhirpath.js can only run asynchronously against a terminology server. */
const ASYNC_FUNCTIONS = /\b(memberOf|expand|lookup|validateVS|validateCS|subsumes|subsumedBy|translate)\s*\(/;

function compileFhirPath(expression: string | undefined, where: string, problems: string[]): CompiledTrigger['fhirPath'] {
  if (expression === undefined || expression.trim() === '') return undefined;
  const needsTerminology = ASYNC_FUNCTIONS.exec(expression);
  if (needsTerminology) {
    problems.push(`${where} '${expression}' cannot be evaluated: ${needsTerminology[1]}() needs a terminology service`);
    return undefined;
  }
  try {
    const rewritten = rewriteBooleanUnion(expression);
    const evaluate = fhirpath.compile(rewritten, r4Model) as unknown as FhirPathFn;
    const direct = compileStateChangeFhirPath(rewritten);
    return { expression, evaluate, ...(direct ? { direct } : {}) };
  } catch (err) {
    problems.push(`${where} '${expression}' cannot be compiled: ${(err as Error).message}`);
    return undefined;
  }
}

/** `Encounter:patient&iterate=Patient.link` → the include and its iterate directives. */
function compileInclude(directive: string, focusType: string, where: string, problems: string[]): CompiledInclude | undefined {
  const [head, ...rest] = directive.split('&').map((s) => s.trim());
  const main = head.replace(/^_include(:iterate)?=/, '');
  const [source, param, targetType] = main.split(':');
  if (main === '*' || (source === focusType && param)) {
    const code = main === '*' ? '*' : param;
    if (code !== '*' && getSearchParam(focusType, code)?.type !== 'reference') {
      problems.push(`${where} '${directive}': '${code}' is not a reference search parameter of ${focusType}`);
      return undefined;
    }
    const iterate: IncludeSpec[] = [];
    for (const part of rest) {
      const m = /^(?:_include:)?iterate=([A-Za-z]+)[.:]([A-Za-z0-9_*-]+)(?::([A-Za-z]+))?$/.exec(part);
      if (m) iterate.push({ sourceType: m[1], param: m[2], ...(m[3] ? { targetType: m[3] } : {}), iterate: true });
      else problems.push(`${where} '${directive}': '${part}' is not an iterate directive`);
    }
    return { param: code, ...(targetType ? { targetType } : {}), iterate };
  }
  problems.push(`${where} '${directive}' is not an include rooted in ${focusType}`);
  return undefined;
}

function compileRevInclude(directive: string, where: string, problems: string[]): IncludeSpec | undefined {
  const [head] = directive.split('&');
  const [source, param, targetType] = head.trim().replace(/^_revinclude(:iterate)?=/, '').split(':');
  const sourceType = source ? resourceTypeOf(source) : undefined;
  if (!sourceType || !param || (param !== '*' && getSearchParam(sourceType, param)?.type !== 'reference')) {
    problems.push(`${where} '${directive}' is not [source type]:[reference parameter]`);
    return undefined;
  }
  return { sourceType, param, ...(targetType ? { targetType } : {}) };
}

/** Compiles a topic once; never throws (what cannot be compiled is listed in `problems`). */
export function compileTopic(topic: SubscriptionTopic): CompiledTopic {
  const problems: string[] = [];
  const triggers: CompiledTrigger[] = [];
  topic.resourceTriggers.forEach((t, i) => {
    const where = `resourceTrigger[${i}]`;
    const resourceType = resourceTypeOf(t.resource);
    if (!resourceType || !getSearchParam(resourceType, '_id')) {
      problems.push(`${where}.resource '${t.resource}' is not an R4 resource type; the trigger never fires`);
      return;
    }
    const qc = t.queryCriteria;
    const declaredQuery = !!qc && [qc.previous, qc.current].some((s) => s !== undefined && s.trim() !== '');
    const query: CompiledQueryCriteria | undefined = qc
      ? {
          previous: compileQueryTest(qc.previous, resourceType, `${where}.queryCriteria.previous`, problems),
          current: compileQueryTest(qc.current, resourceType, `${where}.queryCriteria.current`, problems),
          resultForCreate: qc.resultForCreate,
          resultForDelete: qc.resultForDelete,
          requireBoth: qc.requireBoth === true,
        }
      : undefined;
    const fhirPath = compileFhirPath(t.fhirPathCriteria, `${where}.fhirPathCriteria`, problems);
    const declaredFhirPath = t.fhirPathCriteria !== undefined && t.fhirPathCriteria.trim() !== '';
    // A partly compiled query (one test failed) is unusable: the remaining test alone would mean
    // something else. Drop it entirely.
    const complete = !!query && (query.previous !== undefined) === !!qc?.previous?.trim() && (query.current !== undefined) === !!qc?.current?.trim();
    const usableQuery = declaredQuery && complete ? query : undefined;
    const evaluable = (!declaredQuery && !declaredFhirPath) || usableQuery !== undefined || fhirPath !== undefined;
    if (!evaluable) problems.push(`${where}: none of its criteria can be evaluated; the trigger never fires`);
    triggers.push({
      resourceType,
      ...(t.supportedInteraction.length > 0 ? { interactions: new Set(t.supportedInteraction) } : {}),
      ...(usableQuery ? { query: usableQuery } : {}),
      ...(fhirPath ? { fhirPath } : {}),
      evaluable,
    });
  });

  const shapes = new Map<string, CompiledShape>();
  topic.notificationShape.forEach((s, i) => {
    const where = `notificationShape[${i}]`;
    const focusType = resourceTypeOf(s.resource);
    if (!focusType) {
      problems.push(`${where}.resource '${s.resource}' is not a resource type`);
      return;
    }
    // Several shapes for one type: their directives add up.
    const shape = shapes.get(focusType) ?? { include: [], revInclude: [] };
    for (const d of s.include) {
      const inc = compileInclude(d, focusType, `${where}.include`, problems);
      if (inc) shape.include.push(inc);
    }
    for (const d of s.revInclude) {
      const rev = compileRevInclude(d, `${where}.revInclude`, problems);
      if (rev) shape.revInclude.push(rev);
    }
    shapes.set(focusType, shape);
  });

  return {
    topic,
    url: topic.url,
    ...(topic.version ? { version: topic.version } : {}),
    key: topicKey(topic.url, topic.version),
    triggers,
    resourceTypes: [...new Set(triggers.map((t) => t.resourceType))],
    shapes,
    problems,
  };
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

type TestResult = boolean | undefined;

function runTest(test: CompiledQueryTest, state: Resource | undefined, auto: CriteriaResult | undefined, index: SearchIndex | undefined, options: EvaluateOptions): TestResult {
  if (!state) return auto === undefined ? undefined : auto === 'test-passes';
  try {
    return matchesSearch(state, test.filters, { ...(index ? { index } : {}), ...(options.resolve ? { resolve: options.resolve } : {}), ...(options.now !== undefined ? { now: options.now } : {}) });
  } catch {
    return false; // e.g. a chained parameter without a resolver
  }
}

function queryPasses(q: CompiledQueryCriteria, change: TriggerChange, options: EvaluateOptions): boolean {
  const results: TestResult[] = [];
  if (q.previous) results.push(runTest(q.previous, change.previous, q.resultForCreate, options.previousIndex, options));
  if (q.current) results.push(runTest(q.current, change.current, q.resultForDelete, options.currentIndex, options));
  const known = results.filter((r): r is boolean => r !== undefined);
  if (known.length === 0) return results.length === 0;
  return q.requireBoth ? known.every((r) => r) : known.some((r) => r);
}

function fhirPathPasses(fp: NonNullable<CompiledTrigger['fhirPath']>, change: TriggerChange): boolean {
  const context = change.current ?? change.previous;
  let result: unknown[];
  try {
    result = fp.direct?.(change.previous, change.current) ?? fp.evaluate(context, { previous: change.previous ?? [], current: change.current ?? [] });
  } catch {
    return false;
  }
  if (result.length !== 1) return false;
  return result[0] !== false;
}

function triggerFires(t: CompiledTrigger, change: TriggerChange, options: EvaluateOptions): boolean {
  if (!t.evaluable) return false;
  if (t.resourceType !== change.resourceType) return false;
  if (t.interactions && !t.interactions.has(change.interaction)) return false;
  if (t.query && !queryPasses(t.query, change, options)) return false;
  if (t.fhirPath && !fhirPathPasses(t.fhirPath, change)) return false;
  return true;
}

/** Whether the change fires the topic (its triggers OR-ed). */
export function evaluateTriggers(compiled: CompiledTopic, change: TriggerChange, options: EvaluateOptions = {}): boolean {
  return compiled.triggers.some((t) => triggerFires(t, change, options));
}

/** Whether any trigger of the topic concerns this resource type (cheap pre-check for the consumer). */
export function topicConcerns(compiled: CompiledTopic, resourceType: string): boolean {
  return compiled.resourceTypes.includes(resourceType);
}

// ---------------------------------------------------------------------------------------------------
// Notification shape

const RELATIVE_REF = /^([A-Za-z]+)\/([A-Za-z0-9.-]{1,64})$/;

export interface AdditionalContext {
  /** Relative references (`Patient/1`) the focus points at through the shape's include directives. */
  include: string[];
  /** Includes to follow from those resources (`&iterate=Patient.link`); they need the database. */
  iterate: IncludeSpec[];
}

/**
 * The resources the topic's notificationShape includes for a focus resource: the `Type/id` targets of
 * its include directives, read from the focus's reference keys (`subject>Patient/1`, extract.ts).
 * Absolute and contained references are left out (not resolvable in this server's store).
 */
export function additionalContext(compiled: CompiledTopic, focus: Resource, index?: SearchIndex): AdditionalContext {
  const shape = compiled.shapes.get(focus.resourceType);
  if (!shape || shape.include.length === 0) return { include: [], iterate: [] };
  const tokens = (index ?? extractSearchIndex(focus)).tokens;
  const include = new Set<string>();
  const iterate: IncludeSpec[] = [];
  for (const inc of shape.include) {
    const codes = inc.param === '*' ? referenceParamsFor(focus.resourceType).map((p) => p.code) : [inc.param];
    for (const code of codes) {
      const prefix = `${code}>`;
      for (const t of tokens) {
        if (!t.startsWith(prefix)) continue;
        const ref = t.slice(prefix.length);
        const m = RELATIVE_REF.exec(ref);
        if (!m || (inc.targetType && m[1] !== inc.targetType)) continue;
        include.add(ref);
      }
    }
    iterate.push(...inc.iterate);
  }
  return { include: [...include], iterate };
}

/**
 * The searches that find the shape's `_revinclude` resources of a focus resource (`Observation:subject`
 * on Patient/1 → `Observation?subject=Patient/1`); the caller runs them (executeSearch). Directives
 * whose parameter cannot point at the focus's type are skipped.
 */
export function revIncludeQueries(compiled: CompiledTopic, focus: Resource): ParsedSearch[] {
  const shape = compiled.shapes.get(focus.resourceType);
  if (!shape || !focus.id) return [];
  const target = `${focus.resourceType}/${focus.id}`;
  const out: ParsedSearch[] = [];
  for (const rev of shape.revInclude) {
    if (rev.targetType && rev.targetType !== focus.resourceType) continue;
    const params = rev.param === '*' ? referenceParamsFor(rev.sourceType) : [getSearchParam(rev.sourceType, rev.param)!];
    for (const def of params) {
      if (def.targets.length > 0 && !def.targets.includes(focus.resourceType) && !def.targets.includes('Resource')) continue;
      out.push(parseSearchRequest(rev.sourceType, [[def.code, target]], { strict: true, defaultCount: MAX_COUNT }));
    }
  }
  return out;
}
