/**
 * FHIR messaging (`message`, IG channels page, draft): each notification — handshake, heartbeat,
 * event-notification — is wrapped in a `message` Bundle (entry[0] a MessageHeader, bdl-12; entry[1]
 * the notification bundle) and POSTed to `[endpoint]/$process-message`, where `endpoint` is the base
 * URL of the receiving FHIR server. Any 2xx is delivered. Lifecycle as rest-hook: `requested` until
 * the handshake message is accepted.
 *
 * The transport is rest-hook's: one pooled undici Agent whose every DNS lookup goes through the
 * endpoint guard (no private/loopback addresses unless allow-listed, https only unless allowHttp), no
 * redirects, each attempt bounded by the subscription's timeout, `channel.header` values sent as HTTP
 * headers (server-to-server authentication).
 *
 * MessageHeader: `eventCoding` is the notification type in
 * http://hl7.org/fhir/subscription-notification-type (handshake | heartbeat | event-notification), so
 * a receiver dispatches without opening the notification; `focus` points at the notification bundle
 * entry; `source.endpoint` is this server's FHIR base, `destination.endpoint` the subscriber's.
 */
import { randomUUID } from 'node:crypto';
import type { Agent } from 'undici';
import type { Channel, ChannelTarget, DeliveryResult, RenderedNotification } from './channel.js';
import { EndpointGuard } from './endpoint-guard.js';
import { channelHeaders } from './http-headers.js';
import { guardedAgent, postNotification } from './rest-hook-channel.js';

export const NOTIFICATION_TYPE_SYSTEM = 'http://hl7.org/fhir/subscription-notification-type';
/** The notification bundle is embedded as JSON text, so only JSON payloads can be carried. */
export const MESSAGE_PAYLOAD_TYPES: readonly string[] = ['application/fhir+json', 'application/json'];

export interface MessageChannelOptions {
  guard: EndpointGuard;
  /** Connections per origin; default 16. */
  connectionsPerOrigin?: number;
  userAgent?: string;
  /** Ids of the message Bundle, MessageHeader and notification entry; default random UUIDs (tests pin them). */
  newId?: () => string;
}

/** `https://x.example/fhir` → `https://x.example/fhir/$process-message` (an endpoint already naming the operation is kept). */
export function processMessageUrl(endpoint: string): string {
  const u = new URL(endpoint);
  if (!/\/\$process-message$/.test(u.pathname)) u.pathname = `${u.pathname.replace(/\/+$/, '')}/$process-message`;
  return u.toString();
}

/** This server's FHIR base, from the subscription reference the notification carries. */
function sourceEndpoint(notification: RenderedNotification, subscriptionId: string): string {
  const ref = notification.notification?.subscriptionReference;
  const suffix = `/Subscription/${subscriptionId}`;
  return ref?.endsWith(suffix) ? ref.slice(0, -suffix.length) : `urn:clarion:subscription:${subscriptionId}`;
}

/**
 * The message Bundle as JSON text. The notification body is spliced in as it was rendered: it is
 * already valid JSON, and parsing it again only to serialise it once more would be wasted work.
 */
export function messageBundleJson(notification: RenderedNotification, target: Pick<ChannelTarget, 'subscriptionId' | 'endpoint'>, newId: () => string = randomUUID, now: Date = new Date()): string {
  const headerId = newId();
  const notificationUrl = `urn:uuid:${newId()}`;
  const header = {
    resourceType: 'MessageHeader',
    id: headerId,
    eventCoding: { system: NOTIFICATION_TYPE_SYSTEM, code: notification.type },
    destination: [{ endpoint: target.endpoint ?? '' }],
    source: { name: 'Clarion', software: 'Clarion', endpoint: sourceEndpoint(notification, target.subscriptionId) },
    focus: [{ reference: notificationUrl }],
  };
  const head = { resourceType: 'Bundle', id: newId(), type: 'message', timestamp: now.toISOString() };
  const headJson = JSON.stringify(head);
  return `${headJson.slice(0, -1)},"entry":[${JSON.stringify({ fullUrl: `urn:uuid:${headerId}`, resource: header })},{"fullUrl":${JSON.stringify(notificationUrl)},"resource":${notification.body}}]}`;
}

export class MessageChannel implements Channel {
  readonly type = 'message';
  private readonly agent: Agent;

  constructor(private readonly options: MessageChannelOptions) {
    this.agent = guardedAgent(options.guard, options.connectionsPerOrigin);
  }

  checkEndpoint(endpoint: string | undefined): string | undefined {
    if (!endpoint) return 'a message subscription needs channel.endpoint: the base URL of the FHIR server that receives the messages ($process-message)';
    return this.options.guard.refuseUrl(endpoint);
  }

  checkPayload(contentType: string): string | undefined {
    const mime = contentType.split(';')[0].trim().toLowerCase();
    if (!MESSAGE_PAYLOAD_TYPES.includes(mime)) return `FHIR messages are sent as JSON Bundles; accepted: ${MESSAGE_PAYLOAD_TYPES.join(', ')}`;
    return undefined;
  }

  async deliver(target: ChannelTarget, notification: RenderedNotification): Promise<DeliveryResult> {
    const endpoint = target.endpoint ?? '';
    const refused = this.checkEndpoint(endpoint);
    if (refused) return { ok: false, code: 'endpoint-refused', message: refused };
    const body = messageBundleJson(notification, target, this.options.newId);
    return postNotification(this.agent, processMessageUrl(endpoint), body, {
      ...channelHeaders(target.headers),
      'content-type': 'application/fhir+json',
      'user-agent': this.options.userAgent ?? 'Clarion',
    }, target.timeoutMs);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}
