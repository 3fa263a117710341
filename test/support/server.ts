/**
 * A real Clarion HTTP server on 127.0.0.1 (any free port) over a fresh isolated test database, and
 * a small `fetch` wrapper for FHIR JSON.
 */
import type { OperationOutcome, Resource } from 'fhir/r4.js';
import { createClarion, type Clarion } from '../../src/server/app.js';
import { loadConfig, type ConfigInput } from '../../src/server/config.js';
import type { Clock } from '../../src/store/db.js';
import type { RecentSearchIndexes } from '../../src/store/recent-search-indexes.js';
import { openTestDb } from './test-db.js';

export interface TestServer {
  baseUrl: string;
  clarion: Clarion;
  close(): Promise<void>;
}

/**
 * `background: false` = no event writer, delivery worker or retention (for tests that seed state rows).
 * `clock`: the server's clock (e.g. one a test moves forward to expire binding tokens at a chosen moment).
 * `recentSearchIndexes`: the store → matcher hand-over of search indexes, for a test to observe.
 */
export async function startTestServer(
  config: ConfigInput = {},
  options: { background?: boolean; clock?: Clock; recentSearchIndexes?: RecentSearchIndexes } = {},
): Promise<TestServer> {
  const { db, cleanup } = await openTestDb();
  const clarion = await createClarion(loadConfig({ port: 0, host: '127.0.0.1', logLevel: 'silent', ...config }, {}), {
    db,
    background: options.background ?? true,
    ...(options.clock ? { clock: options.clock } : {}),
    ...(options.recentSearchIndexes ? { recentSearchIndexes: options.recentSearchIndexes } : {}),
  });
  const baseUrl = await clarion.listen();
  return {
    baseUrl,
    clarion,
    async close() {
      await clarion.close();
      await cleanup();
    },
  };
}

export interface FhirResult<T = any> {
  status: number;
  headers: Headers;
  /** Parsed JSON body (undefined when empty). */
  body: T;
  text: string;
}

export interface FhirFetchInit extends Omit<RequestInit, 'body'> {
  /** An object is sent as JSON (application/fhir+json unless a Content-Type is given); a string as is. */
  body?: unknown;
}

/** `fetch` for FHIR: `path` is relative to the base (`Patient/1`) or absolute. */
export async function fhirFetch<T = any>(baseUrl: string, path: string, init: FhirFetchInit = {}): Promise<FhirResult<T>> {
  const url = /^https?:/.test(path) ? path : `${baseUrl}/${path.replace(/^\//, '')}`;
  const headers = new Headers(init.headers);
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    if (!headers.has('content-type')) headers.set('content-type', 'application/fhir+json');
  }
  const res = await fetch(url, { ...init, headers, body });
  const text = await res.text();
  let parsed: unknown;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  return { status: res.status, headers: res.headers, body: parsed as T, text };
}

/** Binds fhirFetch to a base URL. */
export function fhirClient(baseUrl: string) {
  return <T = any>(path: string, init?: FhirFetchInit) => fhirFetch<T>(baseUrl, path, init);
}

/** The first issue of an OperationOutcome body, with its coded error (details.coding[0].code). */
export function firstIssue(body: unknown): { code?: string; clarionCode?: string; diagnostics?: string; expression?: string[]; severity?: string } {
  const oo = body as OperationOutcome;
  const issue = oo?.issue?.[0];
  return {
    code: issue?.code,
    clarionCode: issue?.details?.coding?.[0]?.code,
    diagnostics: issue?.diagnostics,
    expression: issue?.expression,
    severity: issue?.severity,
  };
}

export function patient(extra: Partial<Record<string, unknown>> = {}): Resource {
  return { resourceType: 'Patient', name: [{ family: 'Doe', given: ['Jane'] }], ...extra } as Resource;
}
