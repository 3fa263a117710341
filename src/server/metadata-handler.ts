/**
 * GET [base]/metadata: the CapabilityStatement, built once per base URL (the base is only known
 * once the server listens, and may differ per deployment).
 */
import { readFileSync } from 'node:fs';
import type { CapabilityStatement } from 'fhir/r4.js';
import { searchParamsFor } from '../fhir/search/params.js';
import { buildCapabilityStatement } from './capability-statement.js';
import type { FhirResponse } from './fhir-exchange.js';
import type { ServerContext } from './server-context.js';

/** Both src/server and dist/server sit two levels below package.json. */
function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function searchParamsForCapability(type: string): { name: string; type: string; definition?: string }[] {
  return [...searchParamsFor(type).values()].map((p) => ({ name: p.code, type: p.type, definition: p.url }));
}

export class CapabilityCache {
  private readonly byBase = new Map<string, CapabilityStatement>();
  private readonly version = packageVersion();

  get(baseUrl: string): CapabilityStatement {
    let cs = this.byBase.get(baseUrl);
    if (!cs) {
      cs = buildCapabilityStatement({ baseUrl, software: { name: 'Clarion', version: this.version }, searchParams: searchParamsForCapability });
      this.byBase.set(baseUrl, cs);
    }
    return cs;
  }
}

export function capabilities(ctx: ServerContext, cache: CapabilityCache): FhirResponse {
  return { status: 200, body: cache.get(ctx.baseUrl()) };
}
