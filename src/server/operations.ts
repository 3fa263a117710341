/**
 * The registry of FHIR operations (`$name`). Operations are added by later features (e.g.
 * Subscription `$status`); the REST layer only routes to them, at system, type or instance level.
 */
import type { ClarionConfig } from './config.js';
import type { ResourceStore } from '../store/resource-store.js';
import { Errors } from '../fhir/errors.js';
import type { FhirRequest, FhirResponse, HttpMethod, OperationLevel } from './fhir-exchange.js';

export interface OperationInvocation {
  request: FhirRequest;
  level: OperationLevel;
  type?: string;
  id?: string;
  /** The store to use: bound to the transaction when invoked from a transaction Bundle. */
  store: ResourceStore;
  baseUrl: string;
  config: ClarionConfig;
}

export interface OperationRegistration {
  /** Without the leading `$`. */
  name: string;
  levels: OperationLevel[];
  /** Resource types the operation applies to at type/instance level; all when omitted. */
  types?: string[];
  methods: HttpMethod[];
  handler: (invocation: OperationInvocation) => Promise<FhirResponse>;
}

export class OperationRegistry {
  private readonly byName = new Map<string, OperationRegistration[]>();

  /** Registers an operation; one registered again at the same levels and types replaces the earlier one. */
  register(op: OperationRegistration): void {
    const key = (o: OperationRegistration) => `${[...o.levels].sort().join(',')}|${[...(o.types ?? [])].sort().join(',')}`;
    const list = (this.byName.get(op.name) ?? []).filter((o) => key(o) !== key(op));
    list.push(op);
    this.byName.set(op.name, list);
  }

  /** All registrations (e.g. for the CapabilityStatement). */
  list(): OperationRegistration[] {
    return [...this.byName.values()].flat();
  }

  /** The registration for a call; 404 if none applies at that level and type, 405 for a wrong method. */
  resolve(name: string, level: OperationLevel, type: string | undefined, method: HttpMethod, path: string): OperationRegistration {
    const candidates = (this.byName.get(name) ?? []).filter(
      (op) => op.levels.includes(level) && (level === 'system' || !op.types || (type !== undefined && op.types.includes(type))),
    );
    if (candidates.length === 0) throw Errors.unknownOperation({ name: `$${name}`, level: level + (type && level !== 'system' ? ` (${type})` : '') });
    const match = candidates.find((op) => op.methods.includes(method));
    if (!match) {
      const allowed = [...new Set(candidates.flatMap((op) => op.methods))].join(', ');
      const err = Errors.methodNotAllowed({ method, path, allowed });
      err.headers.Allow = allowed;
      throw err;
    }
    return match;
  }
}
