/**
 * End-to-end set-up for subscription tests: a real Clarion (HTTP on 127.0.0.1) whose endpoint guard
 * allows loopback, a real receiver, and builders for R4 backport Subscriptions pointing at it.
 */
import type { Bundle, Encounter, Parameters, Subscription } from 'fhir/r4.js';
import type { StorageConfig } from '../../src/store/open-db.js';
import type { ConfigInput } from '../../src/server/config.js';
import type { Clock } from '../../src/store/db.js';
import { startReceiver, type Receiver, type Received } from './receiver.js';
import { fhirClient, startTestServer, type TestServer } from './server.js';

export const IG = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const ADMISSION = 'http://hl7.org/SubscriptionTopic/admission';
export const ENCOUNTER_COMPLETE = 'http://example.org/FHIR/SubscriptionTopic/encounter-complete';

export interface E2E extends TestServer {
  fhir: ReturnType<typeof fhirClient>;
  receiver: Receiver;
}

/** Fast retries so failure paths finish quickly; loopback endpoints allowed. `clock`: the server's clock. */
export async function startE2E(config: ConfigInput = {}, options: { clock?: Clock } = {}): Promise<E2E> {
  const server = await startTestServer({
    endpointAllow: '127.0.0.1/32',
    allowHttp: true,
    handshakeDelay: 0,
    retryInitialDelay: 20,
    retryMaxDelay: 100,
    retryMaxAttempts: 4,
    ...config,
  }, options);
  const receiver = await startReceiver();
  return {
    ...server,
    fhir: fhirClient(server.baseUrl),
    receiver,
    async close() {
      await server.close();
      await receiver.close();
    },
  };
}

/** An Encounter that triggers the admission topic (in progress) for `patient` (`Patient/…`). */
export function admissionEncounter(patient: string): Encounter {
  return {
    resourceType: 'Encounter',
    status: 'in-progress',
    class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
    subject: { reference: patient },
  };
}

/** The storage options that point a server process at `config` (a PostgreSQL schema or a PGlite directory). */
export function serverStorageArgs(config: StorageConfig): string[] {
  if (config.kind === 'pg') {
    const u = new URL(config.connectionString);
    if (config.schema) u.searchParams.set('options', `-c search_path=${config.schema}`);
    return ['--database-url', u.toString()];
  }
  return config.dataDir ? ['--data-dir', config.dataDir] : ['--memory'];
}

export interface SubscriptionOptions {
  topic?: string;
  filters?: string[];
  content?: 'empty' | 'id-only' | 'full-resource';
  endpoint: string;
  headers?: string[];
  heartbeatPeriod?: number;
  maxCount?: number;
  timeout?: number;
  payload?: string;
}

export function restHookSubscription(o: SubscriptionOptions): Subscription {
  const ext = [
    ...(o.heartbeatPeriod !== undefined ? [{ url: `${IG}backport-heartbeat-period`, valueUnsignedInt: o.heartbeatPeriod }] : []),
    ...(o.timeout !== undefined ? [{ url: `${IG}backport-timeout`, valueUnsignedInt: o.timeout }] : []),
    ...(o.maxCount !== undefined ? [{ url: `${IG}backport-max-count`, valuePositiveInt: o.maxCount }] : []),
  ];
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'end-to-end test',
    criteria: o.topic ?? ADMISSION,
    ...(o.filters?.length ? { _criteria: { extension: o.filters.map((f) => ({ url: `${IG}backport-filter-criteria`, valueString: f })) } } : {}),
    channel: {
      ...(ext.length ? { extension: ext } : {}),
      type: 'rest-hook',
      endpoint: o.endpoint,
      payload: o.payload ?? 'application/fhir+json',
      _payload: { extension: [{ url: `${IG}backport-payload-content`, valueCode: o.content ?? 'id-only' }] },
      ...(o.headers ? { header: o.headers } : {}),
    },
  };
}

/** The status Parameters (entry[0]) of a received notification bundle, as a name → value map. */
export function statusOf(r: Received | Bundle): { bundle: Bundle; type: string; status: string; eventsSince: string; events: { eventNumber: string; focus?: string }[]; params: Parameters } {
  const bundle = 'body' in r ? (JSON.parse(r.body) as Bundle) : r;
  const params = bundle.entry?.[0]?.resource as Parameters;
  const p = (name: string) => params.parameter?.find((x) => x.name === name);
  const events = (params.parameter ?? [])
    .filter((x) => x.name === 'notification-event')
    .map((x) => ({
      eventNumber: x.part?.find((y) => y.name === 'event-number')?.valueString as string,
      focus: x.part?.find((y) => y.name === 'focus')?.valueReference?.reference,
    }));
  return {
    bundle,
    type: p('type')?.valueCode as string,
    status: p('status')?.valueCode as string,
    eventsSince: p('events-since-subscription-start')?.valueString as string,
    events,
    params,
  };
}

/** Waits until `pred` holds for the Subscription resource (polling its read; bounded). */
export async function waitForSubscription(fhir: E2E['fhir'], id: string, pred: (s: Subscription) => boolean, timeoutMs = 15_000): Promise<Subscription> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const { body } = await fhir<Subscription>(`Subscription/${id}`);
    if (pred(body)) return body;
    if (Date.now() > until) throw new Error(`Subscription/${id} never reached the expected state; last: ${JSON.stringify({ status: body.status, error: body.error })}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
