/**
 * The event writer reads a batch of changes with the content of the types it needs at the start of the
 * batch. A subscription that becomes active inside the batch can make a type relevant that was not:
 * the changes after it must still be matched (their content is loaded then), so no event is lost.
 */
import type { Encounter, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog } from '../../src/subscriptions/event-log.js';
import { updateSubscriptionState } from '../../src/server/subscription-resources.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { admissionEncounter, restHookSubscription } from '../support/subscription-e2e.js';

let server: TestServer;
beforeAll(async () => {
  // No background work: the test decides when the event writer runs, so the batch is exactly its writes.
  server = await startTestServer({ endpointAllow: '127.0.0.1/32', allowHttp: true }, { background: false });
});
afterAll(async () => server.close());

describe('event writer batches', () => {
  it('numbers an event for a change that follows, in the same batch, the activation of the first subscription of its type', async () => {
    const { store } = server.clarion;
    const pipeline = server.clarion.subscriptions;
    // One transaction: the subscription is created, activated (as the handshake would), and an
    // Encounter it matches is written. Before the batch, no active subscription uses Encounter.
    const { subscriptionId, encounterId } = await store.transaction(async (s) => {
      const created = await s.create(restHookSubscription({ endpoint: 'http://127.0.0.1:9/hook', filters: ['patient=Patient/batch-1'] }));
      const id = created.resource.id!;
      await updateSubscriptionState(s, id, { status: 'active' });
      const enc = await s.create(admissionEncounter('Patient/batch-1'));
      return { subscriptionId: id, encounterId: (enc.resource as Encounter).id! };
    });
    pipeline.writer.start();
    try {
      await pipeline.writer.idle();
    } finally {
      await pipeline.writer.stop();
    }
    const events = await new EventLog(server.clarion.db).listEvents(subscriptionId, 1, 10, 10);
    expect(events.map((e) => [e.eventNumber, `${e.focus.type}/${e.focus.id}`])).toEqual([[1, `Encounter/${encounterId}`]]);
    const stored = (await store.read('Subscription', subscriptionId)) as Subscription;
    expect(stored.status).toBe('active');
  });
});
