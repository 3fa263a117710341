/**
 * Instance and type level interactions on single resources: create, read, vread, update, patch,
 * delete and their conditional forms. They work on a FhirRequest and a store (the transaction's
 * store inside a transaction Bundle), never on HTTP objects.
 */
import type { Resource } from 'fhir/r4.js';
import { Errors, FhirError } from '../fhir/errors.js';
import { applyJsonPatch } from '../fhir/json-patch.js';
import { validateR4Resource } from '../fhir/validation.js';
import type { ResourceStore } from '../store/resource-store.js';
import { parseSearchRequest } from '../fhir/search/parse.js';
import { criteriaFromHeader, parseCriteria } from './conditional-criteria.js';
import { MEDIA, writtenResponse, type FhirRequest, type FhirResponse } from './fhir-exchange.js';
import { ifNoneMatchHits, parseIfMatch } from './request-parsing.js';
import { subsetResource, trims } from './resource-subsetting.js';
import type { ServerContext } from './server-context.js';

const RESOURCE_MEDIA: ReadonlySet<string> = new Set([MEDIA.fhirJson, MEDIA.json, MEDIA.fhirXml, MEDIA.xml]);

/**
 * The resource in a create/update body: a JSON object of the URL's type, valid against the R4
 * definitions.
 */
export function resourceFromBody(req: FhirRequest, type: string): Resource {
  assertResourceMedia(req);
  const body = req.body;
  if (body === undefined || body === null) throw Errors.notAResource({ reason: 'the request body is empty' });
  if (typeof body !== 'object' || Array.isArray(body)) throw Errors.notAResource({ reason: 'the body is not a JSON object' });
  const resourceType = (body as { resourceType?: unknown }).resourceType;
  if (typeof resourceType !== 'string') throw Errors.notAResource({ reason: 'resourceType is missing' }, ['resourceType']);
  if (resourceType !== type) throw Errors.resourceTypeMismatch({ expected: type, actual: resourceType }, ['resourceType']);
  return validateR4Resource(body, type);
}

/** A body, if any, must be FHIR JSON or XML (already parsed to JSON by the body parsers). */
export function assertResourceMedia(req: FhirRequest): void {
  if (req.bodyType !== undefined && !RESOURCE_MEDIA.has(req.bodyType)) {
    throw Errors.unsupportedMediaType({ contentType: req.bodyType }, ['Content-Type']);
  }
}

function need<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`route did not provide ${what}`);
  return value;
}

function etagResponse(resource: Resource, status = 200): FhirResponse {
  return {
    status,
    body: resource,
    ...(resource.meta?.versionId ? { versionId: resource.meta.versionId } : {}),
    ...(resource.meta?.lastUpdated ? { lastModified: new Date(resource.meta.lastUpdated) } : {}),
  };
}

export async function createResource(ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = need(req.type, 'type');
  const resource = resourceFromBody(req, type);
  if (req.ifNoneExist !== undefined) {
    const { search, text } = parseCriteria(ctx, type, criteriaFromHeader(req.ifNoneExist), 'create (If-None-Exist)');
    const result = await store.createIfNoneExist(resource, search, text);
    return result.created ? writtenResponse(result.resource, 201) : { ...writtenResponse(result.resource, 200), location: undefined };
  }
  const result = await store.create(resource, req.assignedId ? { id: req.assignedId } : {});
  return writtenResponse(result.resource, 201);
}

export async function readResource(_ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = need(req.type, 'type');
  const resource = await store.read(type, need(req.id, 'id'));
  if (ifNoneMatchHits(req.ifNoneMatch, resource.meta?.versionId)) return { ...etagResponse(resource, 304), body: undefined };
  // `_summary` / `_elements` on read: parsed by the search parser so values are checked the same way.
  const subsetting = req.params.filter(([k]) => k === '_summary' || k === '_elements');
  if (subsetting.length) {
    const s = parseSearchRequest(type, subsetting, { strict: true });
    if (trims(s)) return { ...etagResponse(resource), body: subsetResource(resource, s) };
  }
  return etagResponse(resource);
}

export async function vreadResource(_ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const resource = await store.vread(need(req.type, 'type'), need(req.id, 'id'), need(req.vid, 'vid'));
  if (ifNoneMatchHits(req.ifNoneMatch, resource.meta?.versionId)) return { ...etagResponse(resource, 304), body: undefined };
  return etagResponse(resource);
}

export async function updateResource(_ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = need(req.type, 'type');
  const id = need(req.id, 'id');
  const ifMatch = parseIfMatch(req.ifMatch);
  const resource = resourceFromBody(req, type);
  if (resource.id === undefined) throw Errors.missingId({}, [`${type}.id`]);
  if (resource.id !== id) throw Errors.idMismatch({ urlId: id, bodyId: resource.id }, [`${type}.id`]);
  const result = await store.update(resource, ifMatch !== undefined ? { ifMatch } : {});
  return writtenResponse(result.resource, result.created ? 201 : 200);
}

export async function conditionalUpdate(ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = need(req.type, 'type');
  const ifMatch = parseIfMatch(req.ifMatch);
  const { search, text } = parseCriteria(ctx, type, req.params, 'update');
  const resource = resourceFromBody(req, type);
  const result = await store.conditionalUpdate(resource, search, text, ifMatch !== undefined ? { ifMatch } : {});
  return writtenResponse(result.resource, result.created ? 201 : 200);
}

export async function deleteResource(_ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const ifMatch = parseIfMatch(req.ifMatch);
  const result = await store.delete(need(req.type, 'type'), need(req.id, 'id'), ifMatch !== undefined ? { ifMatch } : {});
  return { status: 204, ...(result.versionId !== undefined ? { versionId: String(result.versionId) } : {}) };
}

export async function conditionalDelete(ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = need(req.type, 'type');
  const { search, text } = parseCriteria(ctx, type, req.params, 'delete');
  await store.conditionalDelete(type, search, text);
  return { status: 204 };
}

/** Attempts for a patch without If-Match that loses a race with a concurrent write. */
const PATCH_ATTEMPTS = 3;

export async function patchResource(_ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  return patchById(req, store, need(req.type, 'type'), need(req.id, 'id'));
}

export async function conditionalPatch(ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const type = need(req.type, 'type');
  const { search, text } = parseCriteria(ctx, type, req.params, 'patch');
  assertPatchMedia(req);
  const ids = await store.matchingIds(search, 2);
  if (ids.length > 1) throw Errors.multipleMatches({ type, criteria: text, count: ids.length });
  if (ids.length === 0) throw Errors.conditionalNoMatch({ type, criteria: text });
  return patchById(req, store, type, ids[0]);
}

function assertPatchMedia(req: FhirRequest): void {
  if (req.bodyType !== MEDIA.jsonPatch) {
    throw Errors.unsupportedMediaType({ contentType: req.bodyType ?? '(none)' }, ['Content-Type']);
  }
}

/**
 * Patch = read, apply, validate, then write only if nobody wrote in between (the read version is
 * the If-Match of the write), so a concurrent update is never silently overwritten.
 */
async function patchById(req: FhirRequest, store: ResourceStore, type: string, id: string): Promise<FhirResponse> {
  assertPatchMedia(req);
  const ifMatch = parseIfMatch(req.ifMatch);
  for (let attempt = 1; ; attempt++) {
    const current = await store.read(type, id);
    const currentVersion = Number(current.meta?.versionId);
    if (ifMatch !== undefined && ifMatch !== currentVersion) {
      throw Errors.versionConflict({ type, id, expected: String(ifMatch), actual: String(currentVersion) });
    }
    const patched = applyJsonPatch(current, req.body);
    if (patched.resourceType !== type || patched.id !== id) throw Errors.patchChangesIdentity({});
    const valid = validateR4Resource(patched, type);
    try {
      const result = await store.update(valid, { ifMatch: currentVersion, method: 'PATCH' });
      return writtenResponse(result.resource, 200);
    } catch (err) {
      const lostRace = err instanceof FhirError && err.code === Errors.versionConflict.code;
      if (!lostRace || ifMatch !== undefined || attempt >= PATCH_ATTEMPTS) throw err;
    }
  }
}
