/**
 * GET [base]/metadata: the CapabilityStatement, built once per base URL (the base is only known
 * once the server listens, and may differ per deployment).
 */
import { readFileSync } from 'node:fs';
import type { CapabilityStatement } from 'fhir/r4.js';
import { searchParamsFor } from '../fhir/search/params.js';
import { buildCapabilityStatement, type SubscriptionCapability } from './capability-statement.js';
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

  /** Cached per base URL and subscription declaration (topics can be added and removed at runtime). */
  get(baseUrl: string, subscriptions?: SubscriptionCapability): CapabilityStatement {
    const key = subscriptions ? `${baseUrl}\n${subscriptions.topics.join('\n')}` : baseUrl;
    let cs = this.byBase.get(key);
    if (!cs) {
      // Keep only the current declaration per base: old topic lists are never asked for again.
      for (const k of this.byBase.keys()) if (k.startsWith(`${baseUrl}\n`)) this.byBase.delete(k);
      cs = buildCapabilityStatement({ baseUrl, software: { name: 'Clarion', version: this.version }, searchParams: searchParamsForCapability, ...(subscriptions ? { subscriptions } : {}) });
      this.byBase.set(key, cs);
    }
    return cs;
  }
}

export function capabilities(ctx: ServerContext, cache: CapabilityCache): FhirResponse {
  return { status: 200, body: cache.get(ctx.baseUrl(), ctx.subscriptionCapability?.()) };
}
