/**
 * The event writer's matcher reuses the search index the store extracted when it wrote a version
 * (handed over through RecentSearchIndexes) instead of extracting it again — for creates and updates
 * through REST and for writes in a transaction — and still matches exactly as before.
 */
import type { Encounter } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecentSearchIndexes } from '../../src/store/recent-search-indexes.js';
import { EventLog } from '../../src/subscriptions/event-log.js';
import { updateSubscriptionState } from '../../src/server/subscription-resources.js';
import { fhirClient, startTestServer, type TestServer } from '../support/server.js';
import { admissionEncounter, restHookSubscription } from '../support/subscription-e2e.js';

const cache = new RecentSearchIndexes();
let server: TestServer;
beforeAll(async () => {
  // No background work: the test runs the event writer once all its writes are in, so every index the
  // store put is still there to be taken (or not) by the matcher.
  server = await startTestServer({ endpointAllow: '127.0.0.1/32', allowHttp: true }, { background: false, recentSearchIndexes: cache });
});
afterAll(async () => server.close());

async function runEventWriter(): Promise<void> {
  const { writer } = server.clarion.subscriptions;
  writer.start();
  try {
    await writer.idle();
  } finally {
    await writer.stop();
  }
}

describe('the subscription matcher and the write path share one index extraction', () => {
  it('takes the index each write put, and the events are those the topic and filter call for', async () => {
    const { store } = server.clarion;
    const fhir = fhirClient(server.baseUrl);
    const subscriptionId = await store.transaction(async (s) => {
      const created = await s.create(restHookSubscription({ endpoint: 'http://127.0.0.1:9/hook', filters: ['patient=Patient/reuse-1'] }));
      await updateSubscriptionState(s, created.resource.id!, { status: 'active' });
      return created.resource.id!;
    });
    await runEventWriter();
    const before = cache.size; // the Subscription's versions: not matched, so never taken

    // Created planned (no event), then updated to in progress (an event: the update's own index, not
    // the create's, must decide `status=in-progress`).
    const planned = await fhir<Encounter>('Encounter', { method: 'POST', body: { ...admissionEncounter('Patient/reuse-1'), status: 'planned' } });
    expect(planned.status).toBe(201);
    const updated = await fhir<Encounter>(`Encounter/${planned.body.id}`, { method: 'PUT', body: { ...planned.body, status: 'in-progress' } });
    expect(updated.status).toBe(200);
    // In a transaction (put after commit): an event.
    const inTx = await store.transaction(async (s) => (await s.create(admissionEncounter('Patient/reuse-1'))).resource);
    // Another patient: no event (the subscription's filter).
    const other = await fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/reuse-2') });
    expect(other.status).toBe(201);
    expect(cache.size).toBe(before + 4);
    // A delete puts nothing; its focus (the previous version) is extracted.
    expect((await fhir(`Encounter/${other.body.id}`, { method: 'DELETE' })).status).toBe(204);
    expect(cache.size).toBe(before + 4);

    await runEventWriter();
    expect(cache.size).toBe(before); // the matcher took every Encounter version's index

    const events = await new EventLog(server.clarion.db).listEvents(subscriptionId, 1, 10, 10);
    expect(events.map((e) => [e.eventNumber, `${e.focus.type}/${e.focus.id}`, e.focus.version, e.interaction])).toEqual([
      [1, `Encounter/${planned.body.id}`, 2, 'update'],
      [2, `Encounter/${inTx.id}`, 1, 'create'],
    ]);
  });
});
