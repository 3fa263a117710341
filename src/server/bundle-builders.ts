/**
 * Bundles the server returns: searchset (with paging links), history, and batch/transaction
 * responses. Pure functions of their inputs.
 */
import { randomUUID } from 'node:crypto';
import type { Bundle, BundleEntry, BundleLink, OperationOutcome, Resource } from 'fhir/r4.js';
import type { SearchMatch } from '../fhir/search/types.js';
import type { HistoryEntry } from '../store/resource-store.js';
import { applyReturnPreference, statusLine, weakEtag, type FhirResponse, type Preferences } from './fhir-exchange.js';

export interface PageLinks {
  self: string;
  next?: string;
  previous?: string;
}

function links(l: PageLinks): BundleLink[] {
  const out: BundleLink[] = [{ relation: 'self', url: l.self }];
  if (l.next) out.push({ relation: 'next', url: l.next });
  if (l.previous) out.push({ relation: 'previous', url: l.previous });
  return out;
}

function bundleHeader(type: Bundle['type'], now: Date): Pick<Bundle, 'resourceType' | 'id' | 'meta' | 'type'> {
  return { resourceType: 'Bundle', id: randomUUID(), meta: { lastUpdated: now.toISOString() }, type };
}

export function resourceUrl(base: string, r: { resourceType: string; id?: string }): string {
  return `${base}/${r.resourceType}/${r.id}`;
}

export interface SearchsetInput {
  base: string;
  now: Date;
  matches: SearchMatch[];
  total?: number;
  links: PageLinks;
  /** Warnings about ignored parameters, sent as an entry with search.mode = outcome. */
  outcome?: OperationOutcome;
  /** Trims each resource for `_summary` / `_elements`. */
  transform?: (r: Resource) => Resource;
}

export function searchsetBundle(input: SearchsetInput): Bundle {
  const entry: BundleEntry[] = input.matches.map((m) => ({
    fullUrl: resourceUrl(input.base, m.resource),
    resource: input.transform ? input.transform(m.resource) : m.resource,
    search: { mode: m.mode },
  }));
  if (input.outcome) entry.push({ fullUrl: `urn:uuid:${randomUUID()}`, resource: input.outcome, search: { mode: 'outcome' } });
  return {
    ...bundleHeader('searchset', input.now),
    ...(input.total !== undefined ? { total: input.total } : {}),
    link: links(input.links),
    ...(entry.length ? { entry } : {}),
  };
}

/** The request that made a version, as FHIR history shows it. */
function historyRequest(e: HistoryEntry): NonNullable<BundleEntry['request']> {
  if (e.method === 'POST') return { method: 'POST', url: e.resourceType };
  return { method: e.method, url: `${e.resourceType}/${e.id}` };
}

function historyStatus(e: HistoryEntry): string {
  if (e.deleted) return statusLine(204);
  return statusLine(e.versionId === 1 || e.method === 'POST' ? 201 : 200);
}

export interface HistoryInput {
  base: string;
  now: Date;
  entries: HistoryEntry[];
  total?: number;
  links: PageLinks;
}

export function historyBundle(input: HistoryInput): Bundle {
  const entry: BundleEntry[] = input.entries.map((e) => ({
    fullUrl: resourceUrl(input.base, { resourceType: e.resourceType, id: e.id }),
    ...(e.resource ? { resource: e.resource } : {}),
    request: historyRequest(e),
    response: {
      status: historyStatus(e),
      etag: weakEtag(String(e.versionId)),
      lastModified: e.lastUpdated.toISOString(),
    },
  }));
  return {
    ...bundleHeader('history', input.now),
    ...(input.total !== undefined ? { total: input.total } : {}),
    link: links(input.links),
    ...(entry.length ? { entry } : {}),
  };
}

/** One batch/transaction response entry for a response (success or error). */
export function responseEntry(res: FhirResponse, prefer: Preferences, base: string): BundleEntry {
  const response: NonNullable<BundleEntry['response']> = {
    status: statusLine(res.status),
    ...(res.location ? { location: res.location } : {}),
    ...(res.versionId ? { etag: weakEtag(res.versionId) } : {}),
    ...(res.lastModified ? { lastModified: res.lastModified.toISOString() } : {}),
  };
  if (res.status >= 400) return { response: { ...response, ...(res.body ? { outcome: res.body } : {}) } };
  const body = applyReturnPreference(res, prefer);
  const fullUrl = res.written && res.body ? { fullUrl: resourceUrl(base, res.body) } : {};
  if (res.written && body?.resourceType === 'OperationOutcome') return { ...fullUrl, response: { ...response, outcome: body } };
  return { ...fullUrl, ...(body ? { resource: body } : {}), response };
}

export function responseBundle(type: 'batch-response' | 'transaction-response', entries: BundleEntry[], now: Date): Bundle {
  return { ...bundleHeader(type, now), ...(entries.length ? { entry: entries } : {}) };
}
