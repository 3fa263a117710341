/**
 * Turns batch/transaction Bundle entries into FhirRequests, matching entry URLs against the same
 * route table as HTTP requests. Entry URLs are relative (`Patient/1`, `Patient?x=y`) or absolute
 * under this server's base.
 */
import type { Binary, Bundle, BundleEntry } from 'fhir/r4.js';
import { Errors, FhirError } from '../fhir/errors.js';
import { MEDIA, type FhirRequest, type HttpMethod, type Preferences } from './fhir-exchange.js';
import { formPairs } from './request-parsing.js';
import { matchPath, resolveRoute } from './route-table.js';

export interface EntryRequest {
  index: number;
  entry: BundleEntry;
  request: FhirRequest;
}

const ENTRY_METHODS: Record<string, HttpMethod> = { GET: 'GET', HEAD: 'GET', POST: 'POST', PUT: 'PUT', PATCH: 'PATCH', DELETE: 'DELETE' };

/** Checks the Bundle's shape (batch or transaction, entries with requests). */
export function bundleEntries(body: unknown): { type: 'batch' | 'transaction'; entries: BundleEntry[] } {
  if (body === undefined || body === null) throw Errors.notAResource({ reason: 'the request body is empty' });
  if (typeof body !== 'object' || Array.isArray(body)) throw Errors.notAResource({ reason: 'the body is not a JSON object' });
  const bundle = body as Partial<Bundle> & { resourceType?: unknown };
  if (bundle.resourceType !== 'Bundle') {
    throw Errors.invalidBundle({ reason: `POST to the base requires a Bundle, got resourceType '${String(bundle.resourceType)}'` }, ['Bundle.resourceType']);
  }
  if (bundle.type !== 'batch' && bundle.type !== 'transaction') {
    throw Errors.invalidBundle({ reason: `Bundle.type must be 'batch' or 'transaction', got '${String(bundle.type)}'` }, ['Bundle.type']);
  }
  if (bundle.entry !== undefined && !Array.isArray(bundle.entry)) throw Errors.invalidBundle({ reason: 'Bundle.entry must be an array' }, ['Bundle.entry']);
  return { type: bundle.type, entries: bundle.entry ?? [] };
}

/** The FhirRequest of entry `index`; throws a FhirError naming the entry when it is malformed. */
export function entryRequest(entry: BundleEntry, index: number, base: string, prefer: Preferences): FhirRequest {
  const at = `Bundle.entry[${index}]`;
  if (entry === null || typeof entry !== 'object') throw Errors.invalidBundle({ reason: `entry ${index} is not an object` }, [at]);
  const r = entry.request;
  if (!r || typeof r !== 'object') throw Errors.invalidBundle({ reason: `entry ${index} has no request` }, [`${at}.request`]);
  const method = typeof r.method === 'string' ? ENTRY_METHODS[r.method] : undefined;
  if (!method) throw Errors.invalidBundle({ reason: `entry ${index} has an invalid request.method '${String(r.method)}'` }, [`${at}.request.method`]);
  if (typeof r.url !== 'string' || r.url.trim() === '') throw Errors.invalidBundle({ reason: `entry ${index} has no request.url` }, [`${at}.request.url`]);

  const relative = relativeUrl(r.url.trim(), base, index);
  const q = relative.indexOf('?');
  const path = (q >= 0 ? relative.slice(0, q) : relative).replace(/^\/+|\/+$/g, '');
  const params = q >= 0 ? formPairs(relative.slice(q + 1)) : [];
  let segments: string[];
  try {
    segments = path === '' ? [] : path.split('/').map((s) => decodeURIComponent(s));
  } catch {
    throw Errors.invalidBundle({ reason: `entry ${index} has a malformed request.url '${r.url}'` }, [`${at}.request.url`]);
  }
  const match = matchPath(segments);
  if (!match) throw Errors.unknownRoute({ method, path: r.url });
  const route = resolveRoute(match.spec, method, match.params, r.url);
  if (route.interaction === 'batch') throw Errors.invalidBundle({ reason: `entry ${index}: a batch or transaction cannot be nested` }, [`${at}.request.url`]);

  const body = entryBody(entry, method, index);
  return {
    method,
    ...route,
    params,
    ...body,
    ...(typeof r.ifMatch === 'string' ? { ifMatch: r.ifMatch } : {}),
    ...(typeof r.ifNoneMatch === 'string' ? { ifNoneMatch: r.ifNoneMatch } : {}),
    ...(typeof r.ifNoneExist === 'string' ? { ifNoneExist: r.ifNoneExist } : {}),
    prefer,
  };
}

function relativeUrl(url: string, base: string, index: number): string {
  if (!/^[a-z][a-z0-9+.-]*:/i.test(url)) return url;
  if (url === base || url.startsWith(`${base}/`) || url.startsWith(`${base}?`)) return url.slice(base.length);
  throw Errors.invalidBundle({ reason: `entry ${index}: request.url '${url}' is not under this server's base ${base}` }, [`Bundle.entry[${index}].request.url`]);
}

/**
 * The entry's body as an HTTP body would arrive: a resource (JSON), or for PATCH a Binary holding
 * a JSON Patch document (FHIR's way of carrying non-resource bodies in a Bundle).
 */
function entryBody(entry: BundleEntry, method: HttpMethod, index: number): Pick<FhirRequest, 'body' | 'bodyType'> {
  const resource = entry.resource as unknown;
  if (resource === undefined) return {};
  if (method !== 'PATCH') return { body: resource, bodyType: MEDIA.fhirJson };
  const binary = resource as Partial<Binary>;
  if (binary.resourceType !== 'Binary' || typeof binary.data !== 'string') {
    throw Errors.unsupportedMediaType({ contentType: `${String(binary.resourceType)} (a PATCH entry needs a Binary with a JSON Patch)` }, [`Bundle.entry[${index}].resource`]);
  }
  const contentType = (binary.contentType ?? '').split(';')[0].trim().toLowerCase();
  if (contentType !== MEDIA.jsonPatch) throw Errors.unsupportedMediaType({ contentType: binary.contentType ?? '(none)' }, [`Bundle.entry[${index}].resource.contentType`]);
  try {
    return { body: JSON.parse(Buffer.from(binary.data, 'base64').toString('utf8')), bodyType: MEDIA.jsonPatch };
  } catch (err) {
    throw Errors.invalidJson({ message: `Bundle.entry[${index}].resource.data: ${(err as Error).message}` });
  }
}

/** The error of a failed transaction: the entry's status and issues, led by one naming the entry. */
export function transactionFailure(index: number, err: FhirError): FhirError {
  const head = Errors.transactionEntryFailed({ index, reason: err.message }, [`Bundle.entry[${index}]`]);
  return new FhirError(err.code, err.status, [...head.issues, ...err.issues], err.headers);
}
