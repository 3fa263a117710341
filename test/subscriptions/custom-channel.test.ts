/**
 * Custom channels (IG: backport-channel-type): the README's example channel, registered under a
 * Coding, carries a Subscription whose `channel.type` keeps a base code (its lifecycle: rest-hook →
 * handshake first; websocket → active at once). A custom channel is always delivered by its Channel,
 * also on the websocket base (never by the websocket hub). An unknown custom channel is refused at
 * create; a failing one turns `error` like any other channel.
 */
import type { Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Channel, ChannelTarget, DeliveryResult, RenderedNotification } from '../../src/channels/channel.js';
import { MIGRATIONS } from '../../src/store/migrations.js';
import { firstIssue } from '../support/server.js';
import { IG, restHookSubscription, startE2E, waitForSubscription, type E2E, admissionEncounter } from '../support/subscription-e2e.js';

// ---- The README example, verbatim: one class plus one register() call. ----

/** Writes one JSON line per notification; `channel.endpoint` names the log. */
export class LogChannel implements Channel {
  readonly type = 'log';
  constructor(private readonly write: (line: string) => void) {}

  checkEndpoint(endpoint: string | undefined): string | undefined {
    return endpoint && /^[a-z0-9-]+$/.test(endpoint) ? undefined : 'a log channel endpoint is a log name (a-z, 0-9, -)';
  }

  async deliver(target: ChannelTarget, n: RenderedNotification): Promise<DeliveryResult> {
    this.write(JSON.stringify({ log: target.endpoint, subscription: target.subscriptionId, type: n.type, events: n.notification?.events.map((e) => e.eventNumber) ?? [] }));
    return { ok: true };
  }

  async close(): Promise<void> {}
}

const LOG_CODING = { system: 'https://clarion.dev/fhir/CodeSystem/channel', code: 'log' };

// ----

interface LogLine {
  log: string;
  subscription: string;
  type: string;
  events: number[];
}

let e2e: E2E;
const lines: LogLine[] = [];
let waiters: (() => void)[] = [];
/** Resolves once `count` lines (of `type`, if given) were written for `subscription`. */
function linesFor(subscription: string, count: number, type?: string): Promise<LogLine[]> {
  return new Promise((resolve) => {
    const check = () => {
      const mine = lines.filter((l) => l.subscription === subscription && (!type || l.type === type));
      if (mine.length < count) return;
      waiters = waiters.filter((w) => w !== check);
      resolve(mine);
    };
    waiters.push(check);
    check();
  });
}

beforeAll(async () => {
  e2e = await startE2E();
  e2e.clarion.subscriptions.services.channels.register(
    new LogChannel((line) => {
      lines.push(JSON.parse(line) as LogLine);
      waiters.forEach((w) => w());
    }),
    LOG_CODING,
  );
});
afterAll(async () => e2e?.close());

function customSubscription(coding: { system?: string; code: string }, endpoint: string, patient: string, o: { baseType?: string; heartbeatPeriod?: number } = {}): Subscription {
  const base = restHookSubscription({ endpoint, filters: [`Encounter?patient=${patient}`], ...(o.heartbeatPeriod !== undefined ? { heartbeatPeriod: o.heartbeatPeriod } : {}) });
  return { ...base, channel: { ...base.channel, type: (o.baseType ?? 'rest-hook') as 'rest-hook', _type: { extension: [{ url: `${IG}backport-channel-type`, valueCoding: coding }] } } };
}

/** The channel code the pipeline recorded, once the event writer has applied every write so far. */
async function pipelineChannel(id: string): Promise<string | undefined> {
  await e2e.clarion.subscriptions.eventsIdle();
  const { rows } = await e2e.clarion.db.query<{ channel_type: string }>('SELECT channel_type FROM subscription_state WHERE subscription_id = $1', [id]);
  return rows[0]?.channel_type;
}

describe('custom channels', () => {
  it('a registered custom channel carries the handshake and the events of its subscriptions', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: customSubscription(LOG_CODING, 'ward-log', 'Patient/custom-1') });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.status).toBe('requested');
    const id = res.body.id!;
    const [hs] = await linesFor(id, 1);
    expect(hs).toEqual({ log: 'ward-log', subscription: id, type: 'handshake', events: [] });
    await waitForSubscription(e2e.fhir, id, (s) => s.status === 'active');
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/custom-1') });
    const all = await linesFor(id, 2);
    expect(all[1]).toEqual({ log: 'ward-log', subscription: id, type: 'event-notification', events: [1] });
    expect(e2e.receiver.received).toHaveLength(0); // nothing went over rest-hook
  });

  it('the custom channel checks its own endpoint at create', async () => {
    const res = await e2e.fhir('Subscription', { method: 'POST', body: customSubscription(LOG_CODING, 'https://example.org/hook', 'Patient/custom-2') });
    expect(res.status).toBe(422);
    expect(firstIssue(res.body)).toMatchObject({ clarionCode: 'CLARION_SUBSCRIPTION_ENDPOINT', diagnostics: expect.stringMatching(/a log channel endpoint is a log name/) });
  });

  it('an unknown custom channel is refused at create (SHALL)', async () => {
    const res = await e2e.fhir('Subscription', { method: 'POST', body: customSubscription({ system: 'http://example.org/subscription-channel-type', code: 'zulip' }, 'https://example.org/zulip', 'Patient/custom-3') });
    expect(res.status).toBe(422);
    expect(firstIssue(res.body)).toMatchObject({
      clarionCode: 'CLARION_SUBSCRIPTION_CHANNEL',
      expression: ['Subscription.channel.type.extension[0]'],
      diagnostics: expect.stringMatching(/Channel 'http:\/\/example.org\/subscription-channel-type\|zulip' is not supported by this server; supported channels: .*custom https:\/\/clarion.dev\/fhir\/CodeSystem\/channel\|log/),
    });
  });

  it('a failing custom channel is retried, then the subscription turns error', async () => {
    const broken: Channel = {
      type: 'broken',
      checkEndpoint: () => undefined,
      deliver: async () => ({ ok: false, code: 'no-response', message: 'the pager gateway is down' }),
      close: async () => {},
    };
    const coding = { system: 'https://clarion.dev/fhir/CodeSystem/channel', code: 'broken' };
    e2e.clarion.subscriptions.services.channels.register(broken, coding);
    const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: customSubscription(coding, 'pager', 'Patient/custom-4') });
    expect(res.status).toBe(201);
    const errored = await waitForSubscription(e2e.fhir, res.body.id!, (s) => s.status === 'error');
    expect(errored.error).toMatch(/handshake failed after 4 attempt\(s\): the pager gateway is down/);
  });
});

describe('a custom channel on the websocket base', () => {
  it('is active at once and its events and heartbeats go through the custom channel, not the websocket hub', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: customSubscription(LOG_CODING, 'ws-log', 'Patient/custom-ws-1', { baseType: 'websocket', heartbeatPeriod: 1 }) });
    expect(res.status, JSON.stringify(res.body)).toBe(201);
    expect(res.body.status).toBe('active'); // the websocket lifecycle: no handshake
    const id = res.body.id!;
    expect(await pipelineChannel(id)).toBe('custom:websocket');
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/custom-ws-1') });
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/custom-ws-1') });
    const events = await linesFor(id, 2, 'event-notification');
    expect(events.map((l) => [l.log, l.events])).toEqual([['ws-log', [1]], ['ws-log', [2]]]);
    // After a second of silence the worker sends a heartbeat through the custom channel as well.
    await linesFor(id, 1, 'heartbeat');
    expect(lines.filter((l) => l.subscription === id).some((l) => l.type === 'handshake')).toBe(false);
  });

  it('gets no websocket binding token: the websocket hub does not carry it', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: customSubscription(LOG_CODING, 'ws-log', 'Patient/custom-ws-2', { baseType: 'websocket' }) });
    expect(res.status).toBe(201);
    const token = await e2e.fhir(`Subscription/${res.body.id}/$get-ws-binding-token`);
    expect(token.status).toBe(422);
    expect(firstIssue(token.body)).toMatchObject({ clarionCode: 'CLARION_WS_TOKEN_REFUSED', diagnostics: expect.stringContaining('its channel is log, not websocket') });
  });

  it('one recorded under its base code before migration 6 receives the events it counted once migrated', async () => {
    const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: customSubscription(LOG_CODING, 'ws-legacy', 'Patient/custom-ws-3', { baseType: 'websocket' }) });
    expect(res.status).toBe(201);
    const id = res.body.id!;
    // The row as earlier versions wrote it: a connection channel, which the delivery worker skips.
    await e2e.clarion.subscriptions.eventsIdle();
    await e2e.clarion.db.query(`UPDATE subscription_state SET channel_type = 'websocket' WHERE subscription_id = $1`, [id]);
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/custom-ws-3') });
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/custom-ws-3') });
    await e2e.clarion.subscriptions.eventsIdle();
    const { rows } = await e2e.clarion.db.query<{ events_since_start: number | string; delivered_through: number | string }>(
      'SELECT events_since_start, delivered_through FROM subscription_state WHERE subscription_id = $1',
      [id],
    );
    expect(rows.map((r) => [Number(r.events_since_start), Number(r.delivered_through)])).toEqual([[2, 0]]);

    await e2e.clarion.db.exec(MIGRATIONS.find((m) => m.version === 6)!.sql);
    expect(await pipelineChannel(id)).toBe('custom:websocket');
    const delivered = await linesFor(id, 2);
    expect(delivered.map((l) => [l.type, l.events])).toEqual([['event-notification', [1]], ['event-notification', [2]]]);
  });

  it('migration 6 leaves base channels alone and moves custom ones on any base', async () => {
    const rest = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: restHookSubscription({ endpoint: e2e.receiver.url }) });
    const custom = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body: customSubscription(LOG_CODING, 'rest-legacy', 'Patient/custom-ws-4') });
    await e2e.clarion.subscriptions.eventsIdle();
    await e2e.clarion.db.query(`UPDATE subscription_state SET channel_type = 'rest-hook' WHERE subscription_id = $1`, [custom.body.id]);
    await e2e.clarion.db.exec(MIGRATIONS.find((m) => m.version === 6)!.sql);
    expect(await pipelineChannel(rest.body.id!)).toBe('rest-hook');
    expect(await pipelineChannel(custom.body.id!)).toBe('custom:rest-hook');
  });
});
