/**
 * Test helpers for the websocket channel: websocket Subscriptions, binding tokens over REST, and a
 * real `ws` client that queues every frame so tests wait for frames (never for time).
 */
import type { Bundle, Encounter, Parameters, Subscription } from 'fhir/r4.js';
import { WebSocket } from 'ws';
import { IG, ADMISSION, statusOf } from '../../support/subscription-e2e.js';
import type { fhirClient } from '../../support/server.js';

type Fhir = ReturnType<typeof fhirClient>;

export interface WsSubscriptionOptions {
  topic?: string;
  filters?: string[];
  content?: 'empty' | 'id-only' | 'full-resource';
  heartbeatPeriod?: number;
  maxCount?: number;
  endpoint?: string;
  /** `channel.payload` (default `application/fhir+json`). */
  payload?: string;
}

export function websocketSubscription(o: WsSubscriptionOptions = {}): Subscription {
  const ext = [
    ...(o.heartbeatPeriod !== undefined ? [{ url: `${IG}backport-heartbeat-period`, valueUnsignedInt: o.heartbeatPeriod }] : []),
    ...(o.maxCount !== undefined ? [{ url: `${IG}backport-max-count`, valuePositiveInt: o.maxCount }] : []),
  ];
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'websocket test',
    criteria: o.topic ?? ADMISSION,
    ...(o.filters?.length ? { _criteria: { extension: o.filters.map((f) => ({ url: `${IG}backport-filter-criteria`, valueString: f })) } } : {}),
    channel: {
      ...(ext.length ? { extension: ext } : {}),
      type: 'websocket',
      ...(o.endpoint ? { endpoint: o.endpoint } : {}),
      payload: o.payload ?? 'application/fhir+json',
      _payload: { extension: [{ url: `${IG}backport-payload-content`, valueCode: o.content ?? 'id-only' }] },
    },
  };
}

/** Creates a websocket Subscription; returns its id (fails the test on anything but 201). */
export async function createWsSubscription(fhir: Fhir, o: WsSubscriptionOptions = {}): Promise<string> {
  const res = await fhir<Subscription>('Subscription', { method: 'POST', body: websocketSubscription(o) });
  if (res.status !== 201) throw new Error(`create failed: ${res.status} ${res.text}`);
  return res.body.id as string;
}

export interface BindingToken {
  token: string;
  expiration: string;
  subscriptions: string[];
  url: string;
}

export function tokenOf(p: Parameters): BindingToken {
  const v = (name: string) => p.parameter?.find((x) => x.name === name);
  return {
    token: v('token')?.valueString as string,
    expiration: v('expiration')?.valueDateTime as string,
    subscriptions: (p.parameter ?? []).filter((x) => x.name === 'subscription').map((x) => x.valueString as string),
    url: v('websocket-url')?.valueUrl as string,
  };
}

/** `$get-ws-binding-token` at instance level (one id) or type level (several). */
export async function getToken(fhir: Fhir, ids: string | string[]): Promise<BindingToken> {
  const path = typeof ids === 'string' ? `Subscription/${ids}/$get-ws-binding-token` : `Subscription/$get-ws-binding-token?${ids.map((id) => `id=${id}`).join('&')}`;
  const res = await fhir<Parameters>(path);
  if (res.status !== 200) throw new Error(`$get-ws-binding-token failed: ${res.status} ${res.text}`);
  return tokenOf(res.body);
}

export interface Frame {
  text: string;
  json: any;
}

/** A websocket client that keeps every frame received until a test takes it. */
export class WsClient {
  readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed?: { code: number; reason: string };

  private constructor(readonly socket: WebSocket) {
    socket.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      this.frames.push({ text, json });
      this.notify();
    });
    socket.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.notify();
    });
  }

  /** `options.autoPong: false` makes a peer that never answers the server's pings (a half-open connection). */
  static async connect(url: string, options?: { autoPong?: boolean }): Promise<WsClient> {
    const socket = new WebSocket(url, options);
    const client = new WsClient(socket);
    await new Promise<void>((resolve, reject) => {
      socket.once('open', () => resolve());
      socket.once('error', reject);
    });
    return client;
  }

  send(data: string | object): void {
    this.socket.send(typeof data === 'string' ? data : JSON.stringify(data));
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** Waits for (and removes) the next frame satisfying `pred`; frames before it stay queued. */
  async next(pred: (f: Frame) => boolean = () => true, what = 'a frame', timeoutMs = 10_000): Promise<Frame> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex(pred);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.closed) throw new Error(`connection closed (${this.closed.code} ${this.closed.reason}) while waiting for ${what}; frames: ${this.describe()}`);
      const left = until - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; frames: ${this.describe()}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  /** The next notification Bundle of `type` (handshake, heartbeat, event-notification) for `subscriptionId`. */
  async notification(type: string, subscriptionId?: string): Promise<ReturnType<typeof statusOf>> {
    const f = await this.next((x) => isNotification(x, type, subscriptionId), `a ${type}${subscriptionId ? ` for ${subscriptionId}` : ''}`);
    return statusOf(f.json as Bundle);
  }

  /** The next OperationOutcome frame (error, warning or information). */
  async outcome(code?: string): Promise<{ severity: string; code?: string; diagnostics: string }> {
    const f = await this.next((x) => x.json?.resourceType === 'OperationOutcome' && (!code || x.json.issue?.[0]?.details?.coding?.[0]?.code === code), `an OperationOutcome${code ? ` ${code}` : ''}`);
    const issue = f.json.issue[0];
    return { severity: issue.severity, code: issue.details?.coding?.[0]?.code, diagnostics: issue.diagnostics };
  }

  /** Resolves with the close code once the server closed the connection. */
  async closedBy(timeoutMs = 15_000): Promise<{ code: number; reason: string }> {
    const until = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > until) throw new Error('the connection was not closed');
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    return this.closed;
  }

  /** Event numbers of the event notifications received so far for `subscriptionId` (removing them). */
  takeEvents(subscriptionId: string): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.frames.length; ) {
      const f = this.frames[i];
      if (isNotification(f, 'event-notification', subscriptionId)) {
        out.push(...statusOf(f.json as Bundle).events.map((e) => Number(e.eventNumber)));
        this.frames.splice(i, 1);
      } else i++;
    }
    return out;
  }

  close(): void {
    this.socket.close();
  }

  private describe(): string {
    return JSON.stringify(this.frames.map((f) => f.text.slice(0, 160)));
  }
}

export function isNotification(f: Frame, type: string, subscriptionId?: string): boolean {
  if (f.json?.resourceType !== 'Bundle') return false;
  const s = statusOf(f.json as Bundle);
  if (s.type !== type) return false;
  if (!subscriptionId) return true;
  const ref = s.params.parameter?.find((p) => p.name === 'subscription')?.valueReference?.reference ?? '';
  return ref.endsWith(`/Subscription/${subscriptionId}`) || ref === `Subscription/${subscriptionId}`;
}

/** Encounter for the admission topic (create triggers it), for `patient`. */
export function encounter(patient = 'Patient/123', status = 'in-progress'): Record<string, unknown> {
  return { resourceType: 'Encounter', status, class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, subject: { reference: patient } };
}

/** Creates an admission Encounter for `patient` and returns it; throws unless the server answered 201. */
export async function admit(fhir: Fhir, patient: string): Promise<Encounter> {
  const res = await fhir<Encounter>('Encounter', { method: 'POST', body: encounter(patient) });
  if (res.status !== 201) throw new Error(`POST Encounter answered ${res.status}: ${JSON.stringify(res.body)}`);
  return res.body;
}

/** A new connection bound to `id` with a fresh token, its handshake received (the token too, e.g. to re-bind). */
export async function bindNew(fhir: Fhir, id: string): Promise<{ ws: WsClient; token: BindingToken }> {
  const token = await getToken(fhir, id);
  const ws = await WsClient.connect(token.url);
  ws.send(`bind-with-token ${token.token}`);
  await ws.notification('handshake', id);
  return { ws, token };
}

/** Event numbers of `id` from `ws`, in arrival order, once `count` have arrived. */
export async function collectEvents(ws: WsClient, id: string, count: number): Promise<number[]> {
  const got: number[] = [];
  while (got.length < count) {
    const ev = await ws.notification('event-notification', id);
    got.push(...ev.events.map((e) => Number(e.eventNumber)));
  }
  return got;
}

/** from, from+1, …, to. */
export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);
