/**
 * `$events` over HTTP (real server, real Encounter versions): ranges, content levels and the content
 * hint, deleted focus, parameter validation, retention (410 / partial warning), the per-call limit,
 * notification versions, and IG validity of every answer.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Bundle, Encounter, OperationOutcome, Parameters, Patient } from 'fhir/r4.js';
import { installSubscriptionOperations } from '../../src/server/subscription-operations.js';
import { r4NotificationErrors } from '../support/ig-validator.js';
import { fhirClient, firstIssue, startTestServer, type TestServer } from '../support/server.js';
import { createSubscription, insertEvents, upsertState } from '../support/subscription-seed.js';

let server: TestServer;
let fhir: ReturnType<typeof fhirClient>;
let enc: string;
let pat: string;
const T0 = new Date('2024-05-01T08:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);

beforeAll(async () => {
  server = await startTestServer({ eventRetentionCount: 100, eventRetentionDays: 30 }, { background: false });
  installSubscriptionOperations(server.clarion, { maxEventsPerCall: 3 });
  fhir = fhirClient(server.baseUrl);
  const { store, db } = server.clarion;
  // Encounter e: v1 planned (create), v2 in-progress, v3 finished, v4 deleted; Patient p v1.
  pat = (await store.create({ resourceType: 'Patient', name: [{ family: 'Doe' }] } as Patient)).resource.id as string;
  const e1 = (await store.create({ resourceType: 'Encounter', status: 'planned', class: { code: 'AMB' }, subject: { reference: `Patient/${pat}` } } as Encounter)).resource as Encounter;
  enc = e1.id as string;
  await store.update({ ...e1, status: 'in-progress' } as Encounter);
  await store.update({ ...e1, status: 'finished' } as Encounter);
  await store.delete('Encounter', enc);
  const focus = (version: number) => ({ type: 'Encounter', id: enc, version });
  const ctx = [{ reference: `Patient/${pat}`, version: 1 }];

  for (const [id, content] of [['full', 'full-resource'], ['ids', 'id-only'], ['none', 'empty']] as const) {
    await createSubscription(store, { id, content });
    await upsertState(db, id, { status: 'active', eventsSinceStart: 4 });
    await insertEvents(db, id, [
      { eventNumber: 1, occurredAt: at(1), focus: focus(1), interaction: 'create', additionalContext: ctx },
      { eventNumber: 2, occurredAt: at(2), focus: focus(2), interaction: 'update', additionalContext: ctx },
      { eventNumber: 3, occurredAt: at(3), focus: focus(3), interaction: 'update', additionalContext: ctx },
      { eventNumber: 4, occurredAt: at(4), focus: focus(4), interaction: 'delete' },
    ]);
  }
  // 'pruned': 10 events allocated, 1..6 pruned.
  await createSubscription(store, { id: 'pruned', content: 'id-only' });
  await upsertState(db, 'pruned', { status: 'active', eventsSinceStart: 10 });
  await insertEvents(db, 'pruned', [7, 8, 9, 10].map((n) => ({ eventNumber: n, occurredAt: at(n), focus: focus(3) })));
  // 'allgone': 5 allocated, none retained.
  await createSubscription(store, { id: 'allgone', content: 'id-only' });
  await upsertState(db, 'allgone', { status: 'active', eventsSinceStart: 5 });
  // 'fresh': no state, no events.
  await createSubscription(store, { id: 'fresh' });
  // 'r4b' and 'r5' notification versions.
  await createSubscription(store, { id: 'r4b', content: 'id-only', payload: 'application/fhir+json; fhirVersion=4.3' });
  await createSubscription(store, { id: 'r5', content: 'id-only', payload: 'application/fhir+json; fhirVersion=5.0' });
  for (const id of ['r4b', 'r5']) {
    await upsertState(db, id, { status: 'active', eventsSinceStart: 1 });
    await insertEvents(db, id, [{ eventNumber: 1, occurredAt: at(1), focus: focus(2) }]);
  }
});
afterAll(async () => server.close());

const statusOf = (b: Bundle) => b.entry![0].resource as Parameters;
const param = (p: Parameters, name: string) => p.parameter?.find((x) => x.name === name);
const eventNumbers = (b: Bundle) =>
  (statusOf(b).parameter ?? []).filter((x) => x.name === 'notification-event').map((x) => x.part?.find((y) => y.name === 'event-number')?.valueString);
const part = (b: Bundle, i: number, name: string) =>
  (statusOf(b).parameter ?? []).filter((x) => x.name === 'notification-event')[i].part?.filter((y) => y.name === name);

function expectValid(b: Bundle): void {
  expect(r4NotificationErrors(b)).toEqual([]);
  for (const e of b.entry ?? []) {
    expect(e.request).toBeDefined();
    expect(e.response).toBeDefined();
  }
}

describe('$events: ranges and content', () => {
  it('full-resource: the inclusive range, original numbers and timestamps, focus versions from history', async () => {
    const res = await fhir<Bundle>('Subscription/full/$events?eventsSinceNumber=1&eventsUntilNumber=3');
    expect(res.status).toBe(200);
    const b = res.body;
    expectValid(b);
    expect(b.type).toBe('history');
    expect(param(statusOf(b), 'type')?.valueCode).toBe('query-event');
    expect(param(statusOf(b), 'events-since-subscription-start')?.valueString).toBe('4');
    expect(eventNumbers(b)).toEqual(['1', '2', '3']);
    expect(part(b, 1, 'timestamp')?.[0].valueInstant).toBe(at(2).toISOString());
    expect(part(b, 1, 'focus')?.[0].valueReference?.reference).toBe(`${server.baseUrl}/Encounter/${enc}`);
    expect(part(b, 1, 'additional-context')?.[0].valueReference?.reference).toBe(`${server.baseUrl}/Patient/${pat}`);
    const encounters = b.entry!.filter((e) => e.resource?.resourceType === 'Encounter').map((e) => [(e.resource as Encounter).status, e.request?.method, e.response?.status]);
    expect(encounters).toEqual([['planned', 'POST', '201'], ['in-progress', 'PUT', '200'], ['finished', 'PUT', '200']]);
    expect(b.entry!.filter((e) => e.resource?.resourceType === 'Patient')).toHaveLength(1);
    expect(b.entry![0].request?.url).toBe(`${server.baseUrl}/Subscription/full/$status`);
  });

  it('a deleted focus has a DELETE entry without resource', async () => {
    const b = (await fhir<Bundle>('Subscription/full/$events?eventsSinceNumber=4')).body;
    expectValid(b);
    expect(eventNumbers(b)).toEqual(['4']);
    expect(b.entry!.slice(1)).toEqual([{ fullUrl: `${server.baseUrl}/Encounter/${enc}`, request: { method: 'DELETE', url: `Encounter/${enc}` }, response: { status: '204' } }]);
  });

  it('id-only: entries without content; empty: no entries, no focus', async () => {
    const ids = (await fhir<Bundle>('Subscription/ids/$events?eventsUntilNumber=2')).body;
    expectValid(ids);
    expect(eventNumbers(ids)).toEqual(['1', '2']);
    expect(ids.entry!.slice(1).every((e) => e.resource === undefined && e.fullUrl)).toBe(true);
    const none = (await fhir<Bundle>('Subscription/none/$events')).body;
    expectValid(none);
    expect(none.entry).toHaveLength(1);
    expect(eventNumbers(none)).toEqual(['1', '2', '3']);
    expect(part(none, 0, 'focus')).toEqual([]);
  });

  it('the content hint lowers the level, but never raises it above the subscription', async () => {
    const lowered = (await fhir<Bundle>('Subscription/full/$events?eventsSinceNumber=2&eventsUntilNumber=2&content=id-only')).body;
    expectValid(lowered);
    expect(lowered.entry!.slice(1).every((e) => e.resource === undefined)).toBe(true);
    const empty = (await fhir<Bundle>('Subscription/full/$events?eventsSinceNumber=2&eventsUntilNumber=2&content=empty')).body;
    expect(empty.entry).toHaveLength(1);
    const capped = (await fhir<Bundle>('Subscription/ids/$events?eventsSinceNumber=2&eventsUntilNumber=2&content=full-resource')).body;
    expectValid(capped);
    expect(capped.entry!.slice(1).every((e) => e.resource === undefined)).toBe(true);
  });

  it('takes POST Parameters (valueString numbers, valueCode content)', async () => {
    const res = await fhir<Bundle>('Subscription/full/$events', {
      method: 'POST',
      body: { resourceType: 'Parameters', parameter: [{ name: 'eventsSinceNumber', valueString: '3' }, { name: 'eventsUntilNumber', valueString: '3' }, { name: 'content', valueCode: 'id-only' }] },
    });
    expect(res.status).toBe(200);
    expectValid(res.body);
    expect(eventNumbers(res.body)).toEqual(['3']);
  });

  it('cuts at the per-call limit, oldest first, with a next link to the rest', async () => {
    const b = (await fhir<Bundle>('Subscription/full/$events?content=id-only')).body;
    expectValid(b);
    expect(eventNumbers(b)).toEqual(['1', '2', '3']);
    const next = b.link?.find((l) => l.relation === 'next')?.url;
    expect(next).toBe(`${server.baseUrl}/Subscription/full/$events?eventsSinceNumber=4&eventsUntilNumber=4&content=id-only`);
    const rest = (await fhir<Bundle>(next!)).body;
    expect(eventNumbers(rest)).toEqual(['4']);
    expect(rest.link).toBeUndefined();
  });

  it('a range without events (beyond the last, or before the first) answers query-status', async () => {
    for (const q of ['eventsSinceNumber=5', 'eventsSinceNumber=0&eventsUntilNumber=0']) {
      const res = await fhir<Bundle>(`Subscription/full/$events?${q}`);
      expect(res.status).toBe(200);
      expectValid(res.body);
      expect(param(statusOf(res.body), 'type')?.valueCode).toBe('query-status');
      expect(param(statusOf(res.body), 'events-since-subscription-start')?.valueString).toBe('4');
      expect(res.body.entry).toHaveLength(1);
    }
    const fresh = await fhir<Bundle>('Subscription/fresh/$events');
    expect(fresh.status).toBe(200);
    expectValid(fresh.body);
  });

  it('answers R4B (history of SubscriptionStatus) and R5 (subscription-notification) per the subscription', async () => {
    const r4b = (await fhir('Subscription/r4b/$events')).body;
    expect(r4b.type).toBe('history');
    expect(r4b.entry[0].resource).toMatchObject({ resourceType: 'SubscriptionStatus', type: 'query-event', notificationEvent: [{ eventNumber: '1' }] });
    const r5 = (await fhir('Subscription/r5/$events')).body;
    expect(r5.type).toBe('subscription-notification');
    expect(r5.entry[0].resource).toMatchObject({ resourceType: 'SubscriptionStatus', type: 'query-event' });
  });
});

describe('$events: retention', () => {
  it('410 when the named range is entirely pruned, naming the oldest retained event and the policy', async () => {
    const res = await fhir('Subscription/pruned/$events?eventsSinceNumber=2&eventsUntilNumber=5');
    expect(res.status).toBe(410);
    const issue = firstIssue(res.body);
    expect(issue.clarionCode).toBe('CLARION_EVENTS_NOT_RETAINED');
    expect(issue.diagnostics).toContain('Events 2–5 of Subscription/pruned are no longer retained');
    expect(issue.diagnostics).toContain('the oldest retained event is 7');
    expect(issue.diagnostics).toContain('newest 100 events per subscription, none older than 30 days');
    const gone = await fhir('Subscription/allgone/$events?eventsUntilNumber=3');
    expect(gone.status).toBe(410);
    expect(firstIssue(gone.body).diagnostics).toContain('no events are retained (the last event number is 5)');
  });

  it('a partly retained range returns what is retained, with a warning in the status entry', async () => {
    const res = await fhir<Bundle>('Subscription/pruned/$events?eventsSinceNumber=5&eventsUntilNumber=8');
    expect(res.status).toBe(200);
    expectValid(res.body);
    expect(eventNumbers(res.body)).toEqual(['7', '8']);
    const outcome = res.body.entry![0].response?.outcome as OperationOutcome;
    expect(outcome.issue[0]).toMatchObject({ severity: 'warning', code: 'incomplete' });
    expect(outcome.issue[0].diagnostics).toContain('Events 5–6 are no longer retained');
    expect(outcome.issue[0].diagnostics).toContain('the oldest retained event is 7');
  });

  it('without bounds, all retained events, no warning; with everything pruned, query-status', async () => {
    const res = await fhir<Bundle>('Subscription/pruned/$events');
    expect(eventNumbers(res.body)).toEqual(['7', '8', '9']);
    expect(res.body.entry![0].response?.outcome).toBeUndefined();
    const none = await fhir<Bundle>('Subscription/allgone/$events');
    expect(none.status).toBe(200);
    expect(param(statusOf(none.body), 'type')?.valueCode).toBe('query-status');
  });
});

describe('$events: errors', () => {
  it.each([
    ['eventsSinceNumber=-1', 'eventsSinceNumber'],
    ['eventsSinceNumber=1.5', 'eventsSinceNumber'],
    ['eventsUntilNumber=abc', 'eventsUntilNumber'],
    ['eventsUntilNumber=', 'eventsUntilNumber'],
    ['eventsSinceNumber=99999999999999999999', 'eventsSinceNumber'],
    ['eventsSinceNumber=1&eventsSinceNumber=2', 'eventsSinceNumber'],
    ['content=everything', 'content'],
  ])('400 for %s, naming %s', async (q, name) => {
    const res = await fhir(`Subscription/full/$events?${q}`);
    expect(res.status).toBe(400);
    expect(firstIssue(res.body)).toMatchObject({ clarionCode: 'CLARION_INVALID_PARAMETER', expression: [name] });
  });

  it('400 when since > until', async () => {
    const res = await fhir('Subscription/full/$events?eventsSinceNumber=3&eventsUntilNumber=2');
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_INVALID_EVENT_RANGE');
    expect(firstIssue(res.body).diagnostics).toContain('eventsSinceNumber (3) is greater than eventsUntilNumber (2)');
  });

  it('400 for a POST parameter without a primitive value', async () => {
    const res = await fhir('Subscription/full/$events', { method: 'POST', body: { resourceType: 'Parameters', parameter: [{ name: 'eventsSinceNumber' }] } });
    expect(res.status).toBe(400);
    expect(firstIssue(res.body).expression).toEqual(['Parameters.parameter[0]']);
  });

  it('404 for an unknown Subscription; not offered at type level', async () => {
    const res = await fhir('Subscription/nope/$events');
    expect(res.status).toBe(404);
    expect(firstIssue(res.body).clarionCode).toBe('CLARION_NOT_FOUND');
    expect((await fhir('Subscription/$events')).status).toBe(404);
  });
});
