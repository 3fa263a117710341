/**
 * What the REST handlers need from the composition root, passed explicitly (no globals).
 */
import type pino from 'pino';
import type { Clock } from '../store/db.js';
import type { ResourceStore } from '../store/resource-store.js';
import type { SubscriptionCapability } from './capability-statement.js';
import type { ClarionConfig } from './config.js';
import type { OperationRegistry } from './operations.js';

export interface FhirRouteDeps {
  store: ResourceStore;
  config: ClarionConfig;
  /** The public FHIR base URL (known only once listening when the port is 0). */
  baseUrl: () => string;
  clock: Clock;
  logger: pino.Logger;
  /** Operations to serve; a new, empty registry when omitted. */
  operations?: OperationRegistry;
  /**
   * What the CapabilityStatement declares about Subscriptions (asked on every GET /metadata, since
   * topics change at runtime); omitted = no Subscriptions Backport declaration.
   */
  subscriptionCapability?: () => SubscriptionCapability;
}

export interface ServerContext extends FhirRouteDeps {
  operations: OperationRegistry;
}
