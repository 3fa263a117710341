/**
 * A real test server with the Subscription resource side installed, and builders for R4 backport
 * Subscriptions (valid by default; each test changes one thing).
 */
import type { Subscription } from 'fhir/r4.js';
import type { SubscriptionServices } from '../../src/server/subscription-resources.js';
import { fhirClient, startTestServer, type TestServer } from '../support/server.js';

export const IG_SD = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const EXT = {
  filter: `${IG_SD}backport-filter-criteria`,
  content: `${IG_SD}backport-payload-content`,
  heartbeat: `${IG_SD}backport-heartbeat-period`,
  timeout: `${IG_SD}backport-timeout`,
  maxCount: `${IG_SD}backport-max-count`,
  channelType: `${IG_SD}backport-channel-type`,
};
export const ADMISSION = 'http://hl7.org/SubscriptionTopic/admission';
export const ENCOUNTER_COMPLETE = 'http://example.org/FHIR/SubscriptionTopic/encounter-complete';

export interface SubscriptionTestServer extends TestServer {
  services: SubscriptionServices;
  fhir: ReturnType<typeof fhirClient>;
}

/** A real server; the Subscription side is installed by the server itself (createClarion). */
export async function startSubscriptionServer(): Promise<SubscriptionTestServer> {
  const server = await startTestServer({}, { background: false });
  return { ...server, services: server.clarion.subscriptions.services, fhir: fhirClient(server.baseUrl) };
}

/** A valid rest-hook Subscription to the admission topic, filtered on a patient. */
export function subscription(overrides: Record<string, unknown> = {}): Subscription & Record<string, any> {
  return {
    resourceType: 'Subscription',
    status: 'requested',
    reason: 'Test admissions',
    end: '2099-01-01T00:00:00Z',
    criteria: ADMISSION,
    _criteria: { extension: [{ url: EXT.filter, valueString: 'Encounter?patient=Patient/123' }] },
    channel: {
      extension: [
        { url: EXT.heartbeat, valueUnsignedInt: 86400 },
        { url: EXT.timeout, valueUnsignedInt: 60 },
        { url: EXT.maxCount, valuePositiveInt: 20 },
      ],
      type: 'rest-hook',
      endpoint: 'https://example.org/Endpoints/d7dcc004',
      payload: 'application/fhir+json',
      _payload: { extension: [{ url: EXT.content, valueCode: 'id-only' }] },
      header: ['Authorization: Bearer secret-token-abc-123'],
    },
    ...overrides,
  } as Subscription & Record<string, any>;
}

/** `subscription()` with its channel changed. */
export function withChannel(channel: Record<string, unknown>, overrides: Record<string, unknown> = {}): Subscription & Record<string, any> {
  const base = subscription(overrides);
  return { ...base, channel: { ...base.channel, ...channel } };
}

/** `subscription()` with these filter strings. */
export function withFilters(filters: string[], overrides: Record<string, unknown> = {}): Subscription & Record<string, any> {
  return subscription({ _criteria: { extension: filters.map((valueString) => ({ url: EXT.filter, valueString })) }, ...overrides });
}
