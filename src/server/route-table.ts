/**
 * The FHIR REST URL space as data: each path pattern (relative to the base) and the interaction each
 * HTTP method performs there. fastify routes are registered from this table, and batch/transaction
 * entry URLs are matched against the same table, so the two cannot disagree.
 *
 * Operations (`$name`) share patterns with ordinary segments (fastify cannot route `$:op`), so a
 * leading `$` is recognised here: `[base]/$op`, `[base]/Type/$op`, `[base]/Type/id/$op`.
 */
import { isR4ResourceType } from '../fhir/definitions.js';
import { Errors } from '../fhir/errors.js';
import { HTTP_METHODS, type HttpMethod, type Interaction, type OperationLevel } from './fhir-exchange.js';
import { assertValidId } from './request-parsing.js';

export interface RouteSpec {
  /** Segments relative to the base; `:name` captures. '' is the base itself. */
  path: string;
  methods: Partial<Record<HttpMethod, Interaction>>;
}

/** Static segments are listed before parametric ones, matching fastify's precedence. */
export const ROUTES: readonly RouteSpec[] = [
  { path: '', methods: { POST: 'batch' } },
  { path: 'metadata', methods: { GET: 'capabilities' } },
  { path: '_history', methods: { GET: 'history-system' } },
  {
    path: ':type',
    methods: { GET: 'search-type', POST: 'create', PUT: 'conditional-update', PATCH: 'conditional-patch', DELETE: 'conditional-delete' },
  },
  { path: ':type/_search', methods: { GET: 'search-type', POST: 'search-type' } },
  { path: ':type/_history', methods: { GET: 'history-type' } },
  { path: ':type/:id', methods: { GET: 'read', PUT: 'update', PATCH: 'patch', DELETE: 'delete' } },
  { path: ':type/:id/_history', methods: { GET: 'history-instance' } },
  { path: ':type/:id/:op', methods: {} },
  { path: ':type/:id/_history/:vid', methods: { GET: 'vread' } },
];

export interface ResolvedRoute {
  interaction: Interaction;
  type?: string;
  id?: string;
  vid?: string;
  operation?: { name: string; level: OperationLevel };
}

/**
 * What `method` on a matched pattern means. Throws the FHIR error for an unknown resource type,
 * a malformed id, an unknown path or a method the path does not allow.
 */
export function resolveRoute(spec: RouteSpec, method: HttpMethod, params: Record<string, string>, displayPath: string): ResolvedRoute {
  const { type, id, op, vid } = params;
  if (type !== undefined && type.startsWith('$')) {
    // `[base]/$op` is captured as :type; nothing may follow a system operation but its parameters.
    if (spec.path !== ':type') throw Errors.unknownRoute({ method, path: displayPath });
    return { interaction: 'operation', operation: { name: type.slice(1), level: 'system' } };
  }
  if (type !== undefined && !isR4ResourceType(type)) throw Errors.unknownResourceType({ type });
  if (id !== undefined && id.startsWith('$')) {
    if (spec.path !== ':type/:id') throw Errors.unknownRoute({ method, path: displayPath });
    return { interaction: 'operation', type, operation: { name: id.slice(1), level: 'type' } };
  }
  if (op !== undefined) {
    if (!op.startsWith('$')) throw Errors.unknownRoute({ method, path: displayPath });
    assertValidId(id ?? '', type !== undefined ? `${type}.id` : undefined);
    return { interaction: 'operation', type, id, operation: { name: op.slice(1), level: 'instance' } };
  }
  const interaction = spec.methods[method];
  if (!interaction) {
    if (spec.path === '' && method === 'GET') throw Errors.unknownRoute({ method, path: displayPath });
    const allowed = allowedMethods(spec);
    const err = Errors.methodNotAllowed({ method, path: displayPath, allowed: allowed.join(', ') });
    err.headers.Allow = allowed.join(', ');
    throw err;
  }
  // The id in the URL is the resource's id: the issue names `[type].id` (the body's id is the same).
  if (id !== undefined) assertValidId(id, type !== undefined ? `${type}.id` : undefined);
  return { interaction, ...(type !== undefined ? { type } : {}), ...(id !== undefined ? { id } : {}), ...(vid !== undefined ? { vid } : {}) };
}

export function allowedMethods(spec: RouteSpec): HttpMethod[] {
  return HTTP_METHODS.filter((m) => spec.methods[m] !== undefined);
}

/** Matches a path relative to the base (already split into decoded segments) against the table. */
export function matchPath(segments: string[]): { spec: RouteSpec; params: Record<string, string> } | undefined {
  const candidates = ROUTES.map((spec) => ({ spec, parts: spec.path === '' ? [] : spec.path.split('/') })).filter(
    (c) => c.parts.length === segments.length,
  );
  let best: { spec: RouteSpec; params: Record<string, string>; score: number } | undefined;
  for (const { spec, parts } of candidates) {
    const params: Record<string, string> = {};
    let score = 0;
    let ok = true;
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i];
      if (p.startsWith(':')) params[p.slice(1)] = segments[i];
      else if (p === segments[i]) score += 1 << (parts.length - i);
      else {
        ok = false;
        break;
      }
    }
    // fastify prefers the static segment earliest in the path; the score weights them that way.
    if (ok && (!best || score > best.score)) best = { spec, params, score };
  }
  return best && { spec: best.spec, params: best.params };
}
