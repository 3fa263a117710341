import Fastify from 'fastify';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCapabilityStatement, SUBSCRIPTION_CAPABILITY } from '../../src/server/capability-statement.js';
import { loadConfig } from '../../src/server/config.js';
import { registerFhirRoutes } from '../../src/server/fhir-routes.js';
import { searchParamsForCapability } from '../../src/server/metadata-handler.js';
import { createSubscriptionServices, subscriptionCapabilityProvider, type SubscriptionServices } from '../../src/server/subscription-resources.js';
import { systemClock } from '../../src/store/db.js';
import { ResourceStore } from '../../src/store/resource-store.js';
import { openTestDb } from '../support/test-db.js';

const base = { baseUrl: 'https://fhir.example.org/fhir', software: { name: 'Clarion', version: '0.0.0' }, searchParams: searchParamsForCapability };
const subscriptionEntry = (cs: any) => cs.rest[0].resource.find((r: any) => r.type === 'Subscription');

describe('buildCapabilityStatement with subscriptions', () => {
  it('declares topics, profile, operations, instantiates and the IG on the Subscription entry', () => {
    const cs = buildCapabilityStatement({ ...base, subscriptions: { topics: ['http://example.org/t1', 'http://example.org/t2'] } });
    const sub = subscriptionEntry(cs);
    expect(sub.extension).toEqual([
      { url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical', valueCanonical: 'http://example.org/t1' },
      { url: 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/capabilitystatement-subscriptiontopic-canonical', valueCanonical: 'http://example.org/t2' },
    ]);
    expect(sub.supportedProfile).toEqual(['http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription']);
    expect(sub.operation).toEqual([
      { name: 'status', definition: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-status' },
      { name: 'events', definition: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-events' },
      { name: 'get-ws-binding-token', definition: 'http://hl7.org/fhir/uv/subscriptions-backport/OperationDefinition/backport-subscription-get-ws-binding-token' },
    ]);
    expect(cs.instantiates).toEqual(['http://hl7.org/fhir/uv/subscriptions-backport/CapabilityStatement/backport-subscription-server-r4']);
    expect(cs.implementationGuide).toEqual(['http://hl7.org/fhir/uv/subscriptions-backport/ImplementationGuide/hl7.fhir.uv.subscriptions-backport']);
    // The IG's search parameters come with the registry; the core ones the IG CapabilityStatement names stay.
    const names = sub.searchParam.map((p: any) => p.name);
    expect(names).toEqual(expect.arrayContaining(['url', 'status', 'type', 'payload', 'criteria', 'topic', 'filter-criteria', 'payload-type', 'custom-channel']));
    expect(sub.searchParam.find((p: any) => p.name === 'topic').definition).toBe('http://hl7.org/fhir/uv/subscriptions-backport/SearchParameter/Subscription-topic');
    // Other resources are unchanged.
    expect((cs as any).rest[0].resource.find((r: any) => r.type === 'Patient').operation).toBeUndefined();
  });

  it('without the option nothing about the IG is declared', () => {
    const cs = buildCapabilityStatement(base);
    expect(cs.instantiates).toBeUndefined();
    expect(subscriptionEntry(cs).extension).toBeUndefined();
    expect(subscriptionEntry(cs).supportedProfile).toBeUndefined();
    expect(SUBSCRIPTION_CAPABILITY.operations.map((o) => o.name)).toEqual(['status', 'events', 'get-ws-binding-token']);
  });
});

describe('GET metadata with a subscription capability provider', () => {
  let cleanup: () => Promise<void>;
  let services: SubscriptionServices;
  let app: ReturnType<typeof Fastify>;

  beforeAll(async () => {
    const t = await openTestDb();
    cleanup = t.cleanup;
    const config = loadConfig({ port: 0, host: '127.0.0.1', logLevel: 'silent' }, {});
    services = await createSubscriptionServices(config);
    app = Fastify();
    const store = ResourceStore.create(t.db, { clock: systemClock });
    await registerFhirRoutes(app, {
      store, config, clock: systemClock, logger: pino({ level: 'silent' }),
      baseUrl: () => 'http://localhost/fhir',
      subscriptionCapability: subscriptionCapabilityProvider(services.topics),
    });
  });
  afterAll(async () => {
    await app?.close();
    await services?.channels.close();
    await cleanup?.();
  });

  const topicsOf = async () => {
    const res = await app.inject({ method: 'GET', url: '/fhir/metadata' });
    expect(res.statusCode).toBe(200);
    const cs = res.json();
    expect(cs.instantiates).toEqual([SUBSCRIPTION_CAPABILITY.instantiates]);
    return subscriptionEntry(cs).extension.map((e: any) => e.valueCanonical);
  };

  it('lists one topic extension per registered topic and follows registry changes', async () => {
    const before = await topicsOf();
    expect(before).toEqual(expect.arrayContaining(['http://hl7.org/SubscriptionTopic/admission', 'http://example.org/FHIR/SubscriptionTopic/encounter-complete']));
    expect(before).toHaveLength(new Set(services.topics.list().map((t) => t.url)).size);
    services.topics.add({ ...services.topics.get('http://hl7.org/SubscriptionTopic/admission')!, url: 'https://test.example/topic/new' }, 'test');
    expect(await topicsOf()).toContain('https://test.example/topic/new');
    services.topics.remove('https://test.example/topic/new');
    expect(await topicsOf()).not.toContain('https://test.example/topic/new');
  });
});

describe('search parameter extension point (params.ts EXTRA_DEFINITIONS)', () => {
  it('extra definitions add parameters and replace a core one with the same code', async () => {
    const { buildSearchParamRegistry, EXTRA_DEFINITIONS } = await import('../../src/fhir/search/params.js');
    expect(EXTRA_DEFINITIONS.flat().map((sp) => sp.code).sort()).toEqual(['custom-channel', 'filter-criteria', 'payload-type', 'topic']);
    const reg = buildSearchParamRegistry([[{ resourceType: 'SearchParameter', url: 'https://test.example/sp/status', name: 'x', status: 'draft', description: 'x', code: 'status', base: ['Subscription'], type: 'string', expression: 'Subscription.reason' }]]);
    expect(reg.get('Subscription')!.get('status')).toMatchObject({ type: 'string', expression: 'Subscription.reason', url: 'https://test.example/sp/status' });
    expect(reg.get('Subscription')!.get('topic')).toBeUndefined();
    expect(reg.get('Subscription')!.get('criteria')?.type).toBe('string');
  });
});
