/**
 * The transport-neutral shape of one FHIR interaction. HTTP requests and batch/transaction Bundle
 * entries are both turned into a FhirRequest and answered with a FhirResponse by the same handlers,
 * so an interaction behaves identically whichever way it arrives.
 */
import { STATUS_CODES } from 'node:http';
import type { OperationOutcome, Resource } from 'fhir/r4.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
export const HTTP_METHODS: readonly HttpMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

export type Interaction =
  | 'capabilities'
  | 'batch'
  | 'history-system'
  | 'create'
  | 'search-type'
  | 'conditional-update'
  | 'conditional-delete'
  | 'conditional-patch'
  | 'history-type'
  | 'read'
  | 'vread'
  | 'update'
  | 'patch'
  | 'delete'
  | 'history-instance'
  | 'operation';

export type OperationLevel = 'system' | 'type' | 'instance';

export interface Preferences {
  return?: 'minimal' | 'representation' | 'OperationOutcome';
  handling?: 'strict' | 'lenient';
}

/** Media types of request bodies Clarion understands (lower case, without parameters). */
export const MEDIA = {
  fhirJson: 'application/fhir+json',
  json: 'application/json',
  jsonPatch: 'application/json-patch+json',
  fhirXml: 'application/fhir+xml',
  xml: 'application/xml',
  form: 'application/x-www-form-urlencoded',
} as const;

export interface FhirRequest {
  method: HttpMethod;
  interaction: Interaction;
  type?: string;
  id?: string;
  vid?: string;
  operation?: { name: string; level: OperationLevel };
  /** Query parameters in the order sent (order matters for repeated search parameters). */
  params: [string, string][];
  /** Parsed body: JSON value for JSON media types, the raw string for forms. */
  body?: unknown;
  /** Media type of the body, lower case without parameters; undefined when there is no body. */
  bodyType?: string;
  ifMatch?: string;
  ifNoneMatch?: string;
  ifNoneExist?: string;
  prefer: Preferences;
  /**
   * How the client reached the server (scheme and Host header), for URLs that must match it, such as
   * the advertised websocket URL. Absent for transaction/batch entries.
   */
  origin?: { protocol: 'http' | 'https'; host: string };
  /**
   * Transactions assign ids to created resources before writing anything, so that references
   * between entries can be rewritten first.
   */
  assignedId?: string;
}

export interface FhirResponse {
  status: number;
  /** The resource, Bundle or OperationOutcome to return (none for 204/304). */
  body?: Resource;
  /** Relative to the base: `Patient/1/_history/2`. */
  location?: string;
  /** Version id of the resource concerned (sent as a weak ETag). */
  versionId?: string;
  lastModified?: Date;
  /** Set for create/update/patch: the body is the written resource and `Prefer: return` applies. */
  written?: boolean;
  /** Extra headers (e.g. from operations). */
  headers?: Record<string, string>;
}

export function weakEtag(versionId: string): string {
  return `W/"${versionId}"`;
}

export function statusLine(status: number): string {
  const text = STATUS_CODES[status];
  return text ? `${status} ${text}` : String(status);
}

/** The response to a write, from the stored resource (its meta carries version and time). */
export function writtenResponse(resource: Resource, status: number): FhirResponse {
  const versionId = resource.meta?.versionId ?? '1';
  return {
    status,
    body: resource,
    location: `${resource.resourceType}/${resource.id}/_history/${versionId}`,
    versionId,
    ...(resource.meta?.lastUpdated ? { lastModified: new Date(resource.meta.lastUpdated) } : {}),
    written: true,
  };
}

/** The body to send for a write response under the client's `Prefer: return`. */
export function applyReturnPreference(res: FhirResponse, prefer: Preferences): Resource | undefined {
  if (!res.written || !res.body) return res.body;
  if (prefer.return === 'minimal') return undefined;
  if (prefer.return === 'OperationOutcome') return informationOutcome(describeWrite(res));
  return res.body;
}

function describeWrite(res: FhirResponse): string {
  const r = res.body as Resource;
  const what = res.status === 201 ? 'Created' : 'Updated';
  return `${what} ${r.resourceType}/${r.id} (version ${res.versionId ?? '?'})`;
}

/** A success outcome (not an error: those come from the registry in src/fhir/errors.ts). */
export function informationOutcome(diagnostics: string): OperationOutcome {
  return { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics }] };
}
