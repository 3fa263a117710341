/**
 * Reads what the `$status`/`$events` operations need from a stored R4 backport Subscription: the
 * payload content level (`channel._payload` backport-payload-content), the notification FHIR version
 * (`fhirVersion` MIME parameter of `channel.payload`), the topic (`criteria`), the status and the
 * server-recorded error. Lenient by design: the resource was validated when it was written, and a
 * report about it must not fail on a detail.
 */
import type { PayloadContent } from '../../notify/notification-model.js';

export const PAYLOAD_CONTENT_URL = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-payload-content';

export type NotificationVersion = 'R4' | 'R4B' | 'R5';

export interface SubscriptionPayloadSettings {
  /** The content level; `empty` when the resource names none (least disclosure). */
  content: PayloadContent;
  /** R4 unless `channel.payload` asks for `fhirVersion=4.3` (R4B) or `5.0` (R5). */
  notificationVersion: NotificationVersion;
  topicUrl?: string;
  status?: string;
  /** Subscription.error (R4/R4B string). */
  error?: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const CONTENT_CODES: ReadonlySet<string> = new Set(['empty', 'id-only', 'full-resource']);

/** `application/fhir+json; fhirVersion=4.3` → R4B; 4.0/4.0.1 or none → R4; 5.0 → R5. */
export function notificationVersionOf(payload: unknown): NotificationVersion {
  if (typeof payload !== 'string') return 'R4';
  const m = /;\s*fhirVersion\s*=\s*"?([0-9.]+)"?/i.exec(payload);
  const v = m?.[1] ?? '';
  if (/^4\.3(\.|$)/.test(v)) return 'R4B';
  if (/^5\.0(\.|$)/.test(v)) return 'R5';
  return 'R4';
}

export function subscriptionPayloadSettingsR4(subscription: Obj): SubscriptionPayloadSettings {
  const channel = isObj(subscription.channel) ? subscription.channel : {};
  const payloadExt = isObj(channel._payload) && Array.isArray(channel._payload.extension) ? channel._payload.extension : [];
  const code = payloadExt.find((e): e is Obj => isObj(e) && e.url === PAYLOAD_CONTENT_URL)?.valueCode;
  return {
    content: typeof code === 'string' && CONTENT_CODES.has(code) ? (code as PayloadContent) : 'empty',
    notificationVersion: notificationVersionOf(channel.payload),
    ...(typeof subscription.criteria === 'string' ? { topicUrl: subscription.criteria } : {}),
    ...(typeof subscription.status === 'string' ? { status: subscription.status } : {}),
    ...(typeof subscription.error === 'string' ? { error: subscription.error } : {}),
  };
}
