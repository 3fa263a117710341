/**
 * The server's R4 CapabilityStatement: exactly the interactions Clarion implements, for every R4
 * resource type. A pure function of its options (the search parameters come from a callback), so the
 * caller builds it once per base URL and caches it.
 */
import type {
  Bundle,
  CapabilityStatement,
  CapabilityStatementRestResource,
  CapabilityStatementRestResourceSearchParam,
  SearchParameter,
} from 'fhir/r4.js';
import { loadDefinitionBundle, r4ResourceTypes } from '../fhir/definitions.js';

export interface CapabilitySearchParam {
  name: string;
  /** An R4 search parameter type (number, date, string, token, reference, composite, quantity, uri, special). */
  type: string;
  definition?: string;
  documentation?: string;
  /** Target types of a reference parameter; when absent, looked up from the R4 definition by `definition`. */
  target?: string[];
}

export interface CapabilityStatementOptions {
  baseUrl: string;
  software: { name: string; version: string };
  searchParams: (type: string) => CapabilitySearchParam[];
  /** CapabilityStatement.date; defaults to when this module was loaded (≈ server start), so repeated builds agree. */
  date?: string;
  /** Declares the Subscriptions Backport IG (R4 server) when given. */
  subscriptions?: SubscriptionCapability;
}

export interface SubscriptionCapability {
  /** Canonical URLs of the supported topics (advertised on the Subscription entry: IG R4 topic discovery). */
  topics: string[];
}

const BACKPORT = 'http://hl7.org/fhir/uv/subscriptions-backport';
export const SUBSCRIPTION_CAPABILITY = {
  topicExtension: `${BACKPORT}/StructureDefinition/capabilitystatement-subscriptiontopic-canonical`,
  profile: `${BACKPORT}/StructureDefinition/backport-subscription`,
  instantiates: `${BACKPORT}/CapabilityStatement/backport-subscription-server-r4`,
  implementationGuide: `${BACKPORT}/ImplementationGuide/hl7.fhir.uv.subscriptions-backport`,
  // Names without `$` (FHIR core guidance, IG 1.2.0); IG 1.1.0's example writes `$status`.
  operations: [
    { name: 'status', definition: `${BACKPORT}/OperationDefinition/backport-subscription-status` },
    { name: 'events', definition: `${BACKPORT}/OperationDefinition/backport-subscription-events` },
    { name: 'get-ws-binding-token', definition: `${BACKPORT}/OperationDefinition/backport-subscription-get-ws-binding-token` },
  ],
} as const;

/** The Subscription entry with the IG's topic extensions, profile and operations added. */
function withSubscriptionSupport(entry: CapabilityStatementRestResource, sub: SubscriptionCapability): CapabilityStatementRestResource {
  return {
    extension: sub.topics.map((valueCanonical) => ({ url: SUBSCRIPTION_CAPABILITY.topicExtension, valueCanonical })),
    ...entry,
    supportedProfile: [SUBSCRIPTION_CAPABILITY.profile],
    operation: SUBSCRIPTION_CAPABILITY.operations.map((o) => ({ ...o })),
  };
}

const LOADED_AT = new Date().toISOString();

const TYPE_INTERACTIONS = ['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type'] as const;
const SYSTEM_INTERACTIONS = ['transaction', 'batch', 'history-system'] as const;

let definitionTargets: Map<string, string[]> | undefined;

/** Reference targets of the R4 search parameters by canonical URL (only read when a callback omits them). */
function targetsOfDefinition(url: string): string[] | undefined {
  if (!definitionTargets) {
    definitionTargets = new Map();
    const bundle = loadDefinitionBundle<Bundle<SearchParameter>>('search-parameters.json');
    for (const e of bundle.entry ?? []) {
      const sp = e.resource;
      if (sp?.url && sp.type === 'reference') definitionTargets.set(sp.url, sp.target ?? []);
    }
  }
  return definitionTargets.get(url);
}

export function buildCapabilityStatement(options: CapabilityStatementOptions): CapabilityStatement {
  const types = [...r4ResourceTypes()].sort();
  const allTypes = new Set(types);
  const params = new Map<string, CapabilitySearchParam[]>();
  /** For each target type: the `Source:param` values that can _revinclude it. */
  const revIncludes = new Map<string, Set<string>>(types.map((t) => [t, new Set<string>()]));

  for (const type of types) {
    // cpb-12: search parameter names must be unique per resource.
    const unique = new Map<string, CapabilitySearchParam>();
    for (const p of options.searchParams(type)) if (!unique.has(p.name)) unique.set(p.name, p);
    const list = [...unique.values()];
    params.set(type, list);
    for (const p of list) {
      if (p.type !== 'reference') continue;
      const targets = p.target ?? (p.definition ? targetsOfDefinition(p.definition) : undefined);
      // No or generic targets: the parameter can point at any type.
      const anyType = !targets || targets.length === 0 || targets.includes('Resource');
      for (const t of anyType ? types : targets.filter((x) => allTypes.has(x))) revIncludes.get(t)?.add(`${type}:${p.name}`);
    }
  }

  const resource = types.map((type): CapabilityStatementRestResource => {
    const list = params.get(type) ?? [];
    const includes = list.filter((p) => p.type === 'reference').map((p) => `${type}:${p.name}`);
    const revs = [...(revIncludes.get(type) ?? [])].sort();
    const searchParam: CapabilityStatementRestResourceSearchParam[] = list.map((p) => ({
      name: p.name,
      type: p.type as CapabilityStatementRestResourceSearchParam['type'],
      ...(p.definition ? { definition: p.definition } : {}),
      ...(p.documentation ? { documentation: p.documentation } : {}),
    }));
    return {
      // r4ResourceTypes() comes from the R4 definitions, so every entry is a valid ResourceType code.
      type: type as CapabilityStatementRestResource['type'],
      profile: `http://hl7.org/fhir/StructureDefinition/${type}`,
      interaction: TYPE_INTERACTIONS.map((code) => ({ code })),
      versioning: 'versioned-update',
      readHistory: true,
      updateCreate: true,
      conditionalCreate: true,
      conditionalRead: 'not-supported',
      conditionalUpdate: true,
      conditionalDelete: 'single',
      referencePolicy: ['literal'],
      ...(includes.length > 0 ? { searchInclude: includes } : {}),
      ...(revs.length > 0 ? { searchRevInclude: revs } : {}),
      ...(searchParam.length > 0 ? { searchParam } : {}),
    };
  });

  const sub = options.subscriptions;
  const resources = sub ? resource.map((r) => (r.type === 'Subscription' ? withSubscriptionSupport(r, sub) : r)) : resource;
  const { name, version } = options.software;
  return {
    resourceType: 'CapabilityStatement',
    status: 'active',
    date: options.date ?? LOADED_AT,
    name: `${name.replace(/[^A-Za-z0-9_]/g, '')}CapabilityStatement`,
    title: `${name} FHIR R4 server`,
    kind: 'instance',
    software: { name, version },
    implementation: { description: `${name} ${version} at ${options.baseUrl}`, url: options.baseUrl },
    ...(sub ? { instantiates: [SUBSCRIPTION_CAPABILITY.instantiates], implementationGuide: [SUBSCRIPTION_CAPABILITY.implementationGuide] } : {}),
    fhirVersion: '4.0.1',
    format: ['json', 'application/fhir+json', 'xml', 'application/fhir+xml'],
    patchFormat: ['application/json-patch+json'],
    rest: [
      {
        mode: 'server',
        resource: resources,
        interaction: SYSTEM_INTERACTIONS.map((code) => ({ code })),
      },
    ],
  };
}
