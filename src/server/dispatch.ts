/**
 * Routes a FhirRequest to the handler of its interaction. HTTP requests and Bundle entries both
 * come through here.
 */
import type { ResourceStore } from '../store/resource-store.js';
import { processBundle } from './bundle-processor.js';
import type { FhirRequest, FhirResponse } from './fhir-exchange.js';
import { history } from './history-handler.js';
import { CapabilityCache, capabilities } from './metadata-handler.js';
import {
  assertResourceMedia,
  conditionalDelete,
  conditionalPatch,
  conditionalUpdate,
  createResource,
  deleteResource,
  patchResource,
  readResource,
  updateResource,
  vreadResource,
} from './resource-handlers.js';
import { searchType } from './search-handler.js';
import type { ServerContext } from './server-context.js';

export class FhirDispatcher {
  private readonly capabilityCache = new CapabilityCache();

  constructor(private readonly ctx: ServerContext) {}

  /** `requestId` names the HTTP request in logs and 500 outcomes (batch entries share it). */
  async handle(req: FhirRequest, store: ResourceStore, requestId: string): Promise<FhirResponse> {
    const ctx = this.ctx;
    switch (req.interaction) {
      case 'capabilities':
        return capabilities(ctx, this.capabilityCache);
      case 'batch':
        assertResourceMedia(req);
        return processBundle(ctx, { body: req.body, prefer: req.prefer, requestId }, (r, s) => this.handle(r, s, requestId));
      case 'create':
        return createResource(ctx, req, store);
      case 'read':
        return readResource(ctx, req, store);
      case 'vread':
        return vreadResource(ctx, req, store);
      case 'update':
        return updateResource(ctx, req, store);
      case 'conditional-update':
        return conditionalUpdate(ctx, req, store);
      case 'patch':
        return patchResource(ctx, req, store);
      case 'conditional-patch':
        return conditionalPatch(ctx, req, store);
      case 'delete':
        return deleteResource(ctx, req, store);
      case 'conditional-delete':
        return conditionalDelete(ctx, req, store);
      case 'search-type':
        return searchType(ctx, req, store);
      case 'history-system':
      case 'history-type':
      case 'history-instance':
        return history(ctx, req, store);
      case 'operation':
        return this.operation(req, store);
    }
  }

  private async operation(req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
    const op = req.operation as NonNullable<FhirRequest['operation']>;
    const path = ['', req.type, req.id, `$${op.name}`].filter((s) => s !== undefined).join('/');
    const registration = this.ctx.operations.resolve(op.name, op.level, req.type, req.method, path);
    return registration.handler({
      request: req,
      level: op.level,
      ...(req.type ? { type: req.type } : {}),
      ...(req.id ? { id: req.id } : {}),
      store,
      baseUrl: this.ctx.baseUrl(),
      config: this.ctx.config,
    });
  }
}
