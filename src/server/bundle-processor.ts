/**
 * Batch and transaction Bundles (POST [base]).
 *
 * Transaction: one database transaction; any failing entry fails the whole (nothing is written) with
 * that entry's status and an outcome naming it. Entries run in FHIR's order — DELETE, POST,
 * PUT/PATCH, GET — after ids of created resources are assigned and references between entries
 * rewritten, so entries may refer to each other in any direction.
 *
 * Batch: every entry on its own (its own transaction), failures reported in its response entry.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry } from 'fhir/r4.js';
import type pino from 'pino';
import { Errors, FhirError } from '../fhir/errors.js';
import type { ResourceStore } from '../store/resource-store.js';
import { bundleEntries, entryRequest, transactionFailure, type EntryRequest } from './bundle-entries.js';
import { responseBundle, responseEntry } from './bundle-builders.js';
import { criteriaFromHeader, parseCriteria } from './conditional-criteria.js';
import type { FhirRequest, FhirResponse, Preferences } from './fhir-exchange.js';
import { resolveConditionalReferences, rewriteReferences } from './reference-rewriter.js';
import type { ServerContext } from './server-context.js';

export type Dispatch = (req: FhirRequest, store: ResourceStore) => Promise<FhirResponse>;

export interface BundleCall {
  body: unknown;
  prefer: Preferences;
  requestId: string;
}

export async function processBundle(ctx: ServerContext, call: BundleCall, dispatch: Dispatch): Promise<FhirResponse> {
  const { type, entries } = bundleEntries(call.body);
  const bundle = type === 'transaction' ? await transaction(ctx, entries, call.prefer, dispatch) : await batch(ctx, entries, call, dispatch);
  return { status: 200, body: bundle };
}

// ---------------------------------------------------------------------------------------------------
// Batch

async function batch(ctx: ServerContext, entries: BundleEntry[], call: BundleCall, dispatch: Dispatch): Promise<Bundle> {
  const base = ctx.baseUrl();
  const out: BundleEntry[] = [];
  for (let i = 0; i < entries.length; i++) {
    let res: FhirResponse;
    try {
      const req = entryRequest(entries[i], i, base, call.prefer);
      res = await ctx.store.transaction(async (s) => {
        const resolved = new Map<string, string>();
        await resolveConditionalReferences(ctx, s, req.body, resolved);
        rewriteReferences(req.body, resolved);
        return dispatch(req, s);
      });
    } catch (err) {
      res = errorResponse(err, ctx.logger, call.requestId, i);
    }
    out.push(responseEntry(res, call.prefer, base));
  }
  return responseBundle('batch-response', out, ctx.clock.now());
}

function errorResponse(err: unknown, logger: pino.Logger, requestId: string, index: number): FhirResponse {
  if (err instanceof FhirError) return { status: err.status, body: err.outcome };
  logger.error({ err, reqId: requestId, entry: index }, 'unexpected error in a batch entry');
  const e = Errors.internal({ requestId: `${requestId}, entry ${index}` });
  return { status: e.status, body: e.outcome };
}

// ---------------------------------------------------------------------------------------------------
// Transaction

/** FHIR's processing order for transaction entries. */
const PHASE: Record<string, number> = { DELETE: 0, POST: 1, PUT: 2, PATCH: 2, GET: 3 };

async function transaction(ctx: ServerContext, entries: BundleEntry[], prefer: Preferences, dispatch: Dispatch): Promise<Bundle> {
  const base = ctx.baseUrl();
  const prepared: EntryRequest[] = entries.map((entry, index) => ({ entry, index, request: atEntry(index, () => entryRequest(entry, index, base, prefer)) }));
  const byPhase = [...prepared].sort((a, b) => PHASE[a.request.method] - PHASE[b.request.method] || a.index - b.index);
  const results = new Array<FhirResponse>(prepared.length);

  await ctx.store.transaction(async (s) => {
    for (const e of byPhase.filter((x) => x.request.method === 'DELETE')) {
      results[e.index] = await atEntryAsync(e.index, () => dispatch(e.request, s));
    }
    // Identities first (placeholders → ids, conditional targets → matches), then references, then writes.
    const ids = new Map<string, string>();
    for (const e of prepared) {
      const existing = await atEntryAsync(e.index, () => resolveIdentity(ctx, s, e, ids));
      if (existing) results[e.index] = existing;
    }
    const conditionalRefs = new Map<string, string>();
    for (const e of prepared) {
      if (e.request.body === undefined || results[e.index]) continue;
      await atEntryAsync(e.index, () => resolveConditionalReferences(ctx, s, e.request.body, conditionalRefs));
      rewriteReferences(e.request.body, ids);
      rewriteReferences(e.request.body, conditionalRefs);
    }
    for (const e of byPhase.filter((x) => x.request.method !== 'DELETE' && !results[x.index])) {
      results[e.index] = await atEntryAsync(e.index, () => dispatch(e.request, s));
    }
  });

  return responseBundle('transaction-response', results.map((r) => responseEntry(r, prefer, base)), ctx.clock.now());
}

/**
 * Decides which resource a POST/PUT/PATCH entry writes and records `fullUrl → Type/id` for
 * reference rewriting. A conditional create that finds its match returns that match's response
 * (nothing is written); conditional update/patch become plain ones on the id they matched.
 */
async function resolveIdentity(ctx: ServerContext, s: ResourceStore, e: EntryRequest, ids: Map<string, string>): Promise<FhirResponse | undefined> {
  const req = e.request;
  const type = req.type;
  if (!type) return undefined;
  const remember = (id: string) => {
    const fullUrl = e.entry.fullUrl;
    if (typeof fullUrl !== 'string' || fullUrl === '') return;
    ids.set(fullUrl, `${type}/${id}`);
    const base = ctx.baseUrl();
    // `http://this-server/fhir/Patient/x` is also referred to as `Patient/x`.
    if (fullUrl.startsWith(`${base}/`)) ids.set(fullUrl.slice(base.length + 1), `${type}/${id}`);
  };

  if (req.interaction === 'create') {
    if (req.ifNoneExist !== undefined) {
      const { search, text } = parseCriteria(ctx, type, criteriaFromHeader(req.ifNoneExist), 'create (ifNoneExist)');
      await s.lockConditional(type, text);
      const found = await s.matchingIds(search, 2);
      if (found.length > 1) throw Errors.multipleMatches({ type, criteria: text, count: found.length });
      if (found.length === 1) {
        remember(found[0]);
        const resource = await s.read(type, found[0]);
        return { status: 200, body: resource, versionId: resource.meta?.versionId, ...(resource.meta?.lastUpdated ? { lastModified: new Date(resource.meta.lastUpdated) } : {}) };
      }
      req.ifNoneExist = undefined;
    }
    req.assignedId = randomUUID();
    remember(req.assignedId);
    return undefined;
  }

  if (req.interaction === 'conditional-update' || req.interaction === 'conditional-patch') {
    const isUpdate = req.interaction === 'conditional-update';
    const { search, text } = parseCriteria(ctx, type, req.params, isUpdate ? 'update' : 'patch');
    await s.lockConditional(type, text);
    const found = await s.matchingIds(search, 2);
    if (found.length > 1) throw Errors.multipleMatches({ type, criteria: text, count: found.length });
    const body = req.body as { id?: unknown } | undefined;
    const bodyId = isUpdate && body && typeof body === 'object' && typeof body.id === 'string' ? body.id : undefined;
    let id: string;
    if (found.length === 1) {
      if (bodyId !== undefined && bodyId !== found[0]) throw Errors.conditionalIdMismatch({ type, matchedId: found[0], bodyId }, [`${type}.id`]);
      id = found[0];
    } else if (!isUpdate) {
      throw Errors.conditionalNoMatch({ type, criteria: text });
    } else {
      id = bodyId ?? randomUUID();
    }
    if (isUpdate && body && typeof body === 'object' && !Array.isArray(body)) body.id = id;
    req.interaction = isUpdate ? 'update' : 'patch';
    req.id = id;
    req.params = [];
    remember(id);
    return undefined;
  }

  if ((req.interaction === 'update' || req.interaction === 'patch') && req.id) remember(req.id);
  return undefined;
}

function atEntry<T>(index: number, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw err instanceof FhirError ? transactionFailure(index, err) : err;
  }
}

async function atEntryAsync<T>(index: number, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw err instanceof FhirError ? transactionFailure(index, err) : err;
  }
}
