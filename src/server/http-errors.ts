/**
 * Every error becomes an OperationOutcome with the right status. fastify's own errors (body too
 * large, unsupported media type, bad URL, …) are mapped to coded errors; anything unexpected is a 500
 * that names the request id and is logged, so a client mistake is never reported as a server fault.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type pino from 'pino';
import { Errors, FhirError } from '../fhir/errors.js';
import { formatForError, sendFhir } from './content-negotiation.js';
import { HTTP_METHODS, type HttpMethod } from './fhir-exchange.js';
import { allowedMethods, matchPath } from './route-table.js';

export interface ErrorMappingOptions {
  bodyLimit: number;
  logger: pino.Logger;
  /** Path prefix of the FHIR base (e.g. `/fhir`), for 405 detection on unknown methods. */
  prefix: string;
}

/** Turns anything thrown while handling a request into a FhirError. */
export function toFhirError(err: unknown, request: FastifyRequest, opts: ErrorMappingOptions): FhirError {
  if (err instanceof FhirError) return err;
  const e = err as Partial<FastifyError> & { type?: string };
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return Errors.bodyTooLarge({ limit: opts.bodyLimit });
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return Errors.unsupportedMediaType({ contentType: request.headers['content-type'] ?? '(none)' }, ['Content-Type']);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return Errors.invalidJson({ message: 'the body is empty' });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return Errors.invalidHeader({ name: 'Content-Length', reason: 'it does not match the length of the body' }, ['Content-Length']);
    case 'FST_ERR_BAD_URL':
      return Errors.badRequest({ message: `the URL is malformed (${e.message ?? 'invalid percent-encoding'})` });
    default:
      break;
  }
  if (e instanceof SyntaxError || e.type === 'entity.parse.failed') return Errors.invalidJson({ message: String(e.message) });
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    // A client error fastify detected that has no specific code here: keep its status and message.
    const generic = Errors.badRequest({ message: String(e.message ?? 'the request cannot be processed') });
    return new FhirError(generic.code, status, generic.issues);
  }
  opts.logger.error({ err, reqId: request.id, method: request.method, url: request.url }, 'unexpected error while handling a request');
  return Errors.internal({ requestId: String(request.id) });
}

export function sendError(reply: FastifyReply, request: FastifyRequest, error: FhirError): FastifyReply {
  return sendFhir(reply, error.status, error.outcome, formatForError(request), error.headers);
}

/** Error and not-found handling for the whole server (FHIR or not, every error is an OperationOutcome). */
export function registerErrorHandling(app: FastifyInstance, opts: ErrorMappingOptions): void {
  app.setErrorHandler((err, request, reply) => sendError(reply, request, toFhirError(err, request, opts)));
  app.setNotFoundHandler((request, reply) => sendError(reply, request, notFoundError(request, opts.prefix)));
}

/**
 * 404 for an unknown path; 405 when the path is a FHIR path but the method is not one FHIR uses
 * there (fastify routes only GET/POST/PUT/PATCH/DELETE, so e.g. OPTIONS lands here).
 */
function notFoundError(request: FastifyRequest, prefix: string): FhirError {
  const path = request.url.split('?')[0];
  const method = request.method;
  if (path === prefix || path.startsWith(`${prefix}/`)) {
    const rest = path.slice(prefix.length).replace(/^\/|\/$/g, '');
    const match = matchPath(rest === '' ? [] : rest.split('/'));
    if (match && !HTTP_METHODS.includes(method as HttpMethod)) {
      const allowed = allowedMethods(match.spec).join(', ');
      const err = Errors.methodNotAllowed({ method, path, allowed: allowed || 'none' });
      if (allowed) err.headers.Allow = allowed;
      return err;
    }
  }
  return Errors.unknownRoute({ method, path });
}

/**
 * For fastify's `frameworkErrors` option (set where fastify is constructed): errors raised before
 * routing, such as a malformed percent-encoding in the path, otherwise bypass the error handler.
 */
export function frameworkErrorHandler(bodyLimit: number, logger: pino.Logger) {
  return (err: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    void sendError(reply, request, toFhirError(err, request, { bodyLimit, logger, prefix: '/fhir' }));
  };
}
