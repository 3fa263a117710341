/**
 * The HTTP side of an interaction: fastify request → FhirRequest, FhirResponse → reply (status,
 * ETag, Last-Modified, Location, Prefer: return, format).
 */
import type { FastifyReply, FastifyRequest, RouteHandlerMethod } from 'fastify';
import { negotiateFormat, sendFhir } from './content-negotiation.js';
import type { FhirDispatcher } from './dispatch.js';
import { applyReturnPreference, weakEtag, type FhirRequest, type FhirResponse, type HttpMethod } from './fhir-exchange.js';
import { mediaTypeOf, parsePrefer, queryPairs } from './request-parsing.js';
import { resolveRoute, type RouteSpec } from './route-table.js';
import type { ServerContext } from './server-context.js';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

export function toFhirRequest(request: FastifyRequest, spec: RouteSpec): FhirRequest {
  const method = (request.method === 'HEAD' ? 'GET' : request.method) as HttpMethod;
  const path = request.url.split('?')[0];
  const route = resolveRoute(spec, method, request.params as Record<string, string>, path);
  const bodyType = request.body === undefined ? undefined : mediaTypeOf(request.headers['content-type']);
  const ifMatch = header(request, 'if-match');
  const ifNoneMatch = header(request, 'if-none-match');
  const ifNoneExist = header(request, 'if-none-exist');
  return {
    method,
    ...route,
    params: queryPairs(request.url),
    ...(request.body !== undefined ? { body: request.body } : {}),
    ...(bodyType !== undefined ? { bodyType } : {}),
    ...(ifMatch !== undefined ? { ifMatch } : {}),
    ...(ifNoneMatch !== undefined ? { ifNoneMatch } : {}),
    ...(ifNoneExist !== undefined ? { ifNoneExist } : {}),
    prefer: parsePrefer(request.headers.prefer),
    ...(request.host ? { origin: { protocol: request.protocol === 'https' ? 'https' : 'http', host: request.host } } : {}),
  };
}

export function responseHeaders(res: FhirResponse, baseUrl: string): Record<string, string> {
  const h: Record<string, string> = { ...(res.headers ?? {}) };
  if (res.versionId !== undefined) h.ETag = weakEtag(res.versionId);
  if (res.lastModified) h['Last-Modified'] = res.lastModified.toUTCString();
  if (res.location) h.Location = `${baseUrl}/${res.location}`;
  return h;
}

/** The fastify handler for one route pattern of the table. */
export function routeHandler(ctx: ServerContext, dispatcher: FhirDispatcher, spec: RouteSpec): RouteHandlerMethod {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    // Chosen before anything runs: a write must not happen if its answer cannot be sent (406).
    const format = negotiateFormat(request);
    const req = toFhirRequest(request, spec);
    const res = await dispatcher.handle(req, ctx.store, String(request.id));
    const body = applyReturnPreference(res, req.prefer);
    return sendFhir(reply, res.status, body, format, responseHeaders(res, ctx.baseUrl()));
  };
}
