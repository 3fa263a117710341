/**
 * Custom channels (IG: backport-channel-type): the README's example channel, registered under a
 * Coding, carries a Subscription whose `channel.type` keeps a base code (its lifecycle: rest-hook →
 * handshake first). An unknown custom channel is refused at create; a failing one turns `error` like
 * any other channel.
 */
import type { Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Channel, ChannelTarget, DeliveryResult, RenderedNotification } from '../../src/channels/channel.js';
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
/** Resolves once `count` lines were written for `subscription`. */
function linesFor(subscription: string, count: number): Promise<LogLine[]> {
  return new Promise((resolve) => {
    const check = () => {
      const mine = lines.filter((l) => l.subscription === subscription);
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

function customSubscription(coding: { system?: string; code: string }, endpoint: string, patient: string): Subscription {
  const base = restHookSubscription({ endpoint, filters: [`Encounter?patient=${patient}`] });
  return { ...base, channel: { ...base.channel, type: 'rest-hook', _type: { extension: [{ url: `${IG}backport-channel-type`, valueCoding: coding }] } } };
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
