/**
 * Registers the FHIR REST API under `/fhir`: body parsers, error handling and one fastify route per
 * pattern of the route table (every method goes to the same handler, which answers 405 itself for
 * methods the pattern does not allow).
 */
import type { FastifyBaseLogger, FastifyInstance, RawReplyDefaultExpression, RawRequestDefaultExpression, RawServerDefault } from 'fastify';
import { registerBodyParsers } from './content-negotiation.js';
import { FhirDispatcher } from './dispatch.js';
import { HTTP_METHODS } from './fhir-exchange.js';
import { registerErrorHandling } from './http-errors.js';
import { routeHandler } from './http-exchange.js';
import { OperationRegistry } from './operations.js';
import { ROUTES } from './route-table.js';
import type { FhirRouteDeps, ServerContext } from './server-context.js';

export const FHIR_PREFIX = '/fhir';

export interface FhirRoutes {
  /** Where operations (`$name`) are registered; they are served at once, no re-registration needed. */
  operations: OperationRegistry;
}

export async function registerFhirRoutes<Logger extends FastifyBaseLogger>(
  server: FastifyInstance<RawServerDefault, RawRequestDefaultExpression, RawReplyDefaultExpression, Logger>,
  deps: FhirRouteDeps,
): Promise<FhirRoutes> {
  // Only the logger type differs (app.ts passes a pino instance); nothing here depends on it.
  const app = server as unknown as FastifyInstance;
  const ctx: ServerContext = { ...deps, operations: deps.operations ?? new OperationRegistry() };
  const dispatcher = new FhirDispatcher(ctx);
  registerErrorHandling(app, { bodyLimit: ctx.config.bodyLimit, logger: ctx.logger, prefix: FHIR_PREFIX });
  await app.register(
    async (fhir) => {
      registerBodyParsers(fhir, ctx.config.bodyLimit);
      for (const spec of ROUTES) {
        fhir.route({ method: [...HTTP_METHODS], url: spec.path === '' ? '/' : `/${spec.path}`, handler: routeHandler(ctx, dispatcher, spec) });
      }
    },
    { prefix: FHIR_PREFIX },
  );
  return { operations: ctx.operations };
}
