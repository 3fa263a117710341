import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSubscriptionServices, loadTopicResources, syncTopicFromResource } from '../../src/server/subscription-resources.js';
import { IG_DIR } from '../support/ig-validator.js';
import { firstIssue } from '../support/server.js';
import { startSubscriptionServer, subscription, type SubscriptionTestServer } from './subscription-support.js';

let s: SubscriptionTestServer;
const XVER = 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.';
const IG_TOPIC = 'http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete';

/** The IG 1.2.0-ballot Basic-wrapped R4 topic, optionally with another url. */
function basicTopic(url = IG_TOPIC): Record<string, any> {
  const b = JSON.parse(readFileSync(join(IG_DIR, 'v1.2.0-ballot', 'Basic-r4-encounter-complete.json'), 'utf8'));
  delete b.id;
  b.extension = b.extension.map((e: any) => (e.url === `${XVER}url` ? { ...e, valueUri: url } : e));
  return b;
}

/** What the change-feed consumer does after commit. */
async function syncFromStore(id: string) {
  const cur = await s.clarion.store.current('Basic', id);
  return syncTopicFromResource(s.services.topics, { resourceType: 'Basic', id, ...(cur?.resource && !cur.deleted ? { resource: cur.resource } : {}) });
}

beforeAll(async () => {
  s = await startSubscriptionServer();
});
afterAll(async () => {
  await s?.close();
});

describe('Basic-wrapped SubscriptionTopic resources', () => {
  it('a valid topic is accepted; it is registered only when synced after commit', async () => {
    const res = await s.fhir('Basic', { method: 'POST', body: basicTopic() });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(s.services.topics.get(IG_TOPIC)).toBeUndefined();
    const sync = await syncFromStore(res.body.id);
    expect(sync.added?.url).toBe(IG_TOPIC);
    expect(s.services.topics.sourceOf(`${IG_TOPIC}|1.2.0`)).toBe(`Basic/${res.body.id}`);

    const sub = await s.fhir('Subscription', { method: 'POST', body: subscription({ criteria: IG_TOPIC, _criteria: undefined }) });
    expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  });

  it.each([
    ['a resource type the server does not support', 'NotAType', /^SubscriptionTopic\.resourceTrigger\[0\]\.resource$/, /'NotAType' is not supported by this server/],
    ['a resource that is not a type name', 'encounter', /^Basic\.extension\[6\]\.extension\[\d+\]$/, /encounter/],
  ])('an invalid topic is rejected (%s) with the path of the problem', async (_label, resource, where, why) => {
    const b = basicTopic('https://test.example/topic/invalid');
    const trigger = b.extension.find((e: any) => e.url.endsWith('extension-SubscriptionTopic.resourceTrigger'));
    trigger.extension = trigger.extension.map((e: any) => (e.url === 'resource' ? { url: 'resource', valueUri: resource } : e));
    const res = await s.fhir('Basic', { method: 'POST', body: b });
    expect(res.status).toBe(400);
    const issue = firstIssue(res.body);
    expect(issue.clarionCode).toBe('CLARION_INVALID_TOPIC');
    expect(issue.expression?.[0]).toMatch(where);
    expect(issue.diagnostics).toMatch(why);
  });

  it('a topic without url is rejected', async () => {
    const b = basicTopic();
    b.extension = b.extension.filter((e: any) => e.url !== `${XVER}url`);
    const res = await s.fhir('Basic', { method: 'POST', body: b });
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_INVALID_TOPIC');
    expect(firstIssue(res.body).diagnostics).toMatch(/url/);
  });

  it('a topic whose url|version is already registered from elsewhere (a built-in) is refused', async () => {
    const builtin = s.services.topics.get('http://hl7.org/SubscriptionTopic/admission')!;
    const b = basicTopic(builtin.url);
    b.extension = b.extension.filter((e: any) => e.url !== `${XVER}version`);
    if (builtin.version) b.extension.push({ url: `${XVER}version`, valueString: builtin.version });
    const res = await s.fhir('Basic', { method: 'POST', body: b });
    expect(res.status).toBe(409);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_DUPLICATE_TOPIC');
    expect(firstIssue(res.body).diagnostics).toMatch(/builtin:admission\.json/);
  });

  it('other Basic resources are not touched', async () => {
    const res = await s.fhir('Basic', { method: 'POST', body: { resourceType: 'Basic', code: { text: 'something else' } } });
    expect(res.status).toBe(201);
    expect((await syncFromStore(res.body.id)).added).toBeUndefined();
  });

  it('update re-registers (a changed url replaces the old one); delete removes', async () => {
    const url1 = 'https://test.example/topic/moving-1';
    const url2 = 'https://test.example/topic/moving-2';
    const created = await s.fhir('Basic', { method: 'POST', body: basicTopic(url1) });
    expect(created.status).toBe(201);
    const id = created.body.id as string;
    await syncFromStore(id);
    expect(s.services.topics.get(url1)).toBeDefined();

    const updated = await s.fhir(`Basic/${id}`, { method: 'PUT', body: { ...basicTopic(url2), id } });
    expect(updated.status).toBe(200);
    const sync = await syncFromStore(id);
    expect(sync.removed.map((t) => t.url)).toEqual([url1]);
    expect(s.services.topics.get(url1)).toBeUndefined();
    expect(s.services.topics.get(url2)).toBeDefined();

    const bad = basicTopic(url2);
    bad.extension = bad.extension.filter((e: any) => e.url !== `${XVER}url`);
    expect((await s.fhir(`Basic/${id}`, { method: 'PUT', body: { ...bad, id } })).status).toBe(400);

    expect((await s.fhir(`Basic/${id}`, { method: 'DELETE' })).status).toBeLessThan(300);
    const gone = await syncFromStore(id);
    expect(gone.removed.map((t) => t.url)).toEqual([url2]);
    expect(s.services.topics.get(url2)).toBeUndefined();
    const sub = await s.fhir('Subscription', { method: 'POST', body: subscription({ criteria: url2, _criteria: undefined }) });
    expect(sub.status).toBe(422);
  });

  it('loadTopicResources registers every stored Basic topic (start-up)', async () => {
    const fresh = await createSubscriptionServices(s.clarion.config);
    expect(fresh.topics.get(IG_TOPIC)).toBeUndefined();
    const n = await loadTopicResources(s.clarion.store, fresh.topics);
    expect(n).toBe(1);
    expect(fresh.topics.get(IG_TOPIC)).toBeDefined();
    await fresh.channels.close();
  });
});
