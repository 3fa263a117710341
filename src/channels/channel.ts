/**
 * The one Channel interface. A channel only carries an already-built notification to its endpoint; it
 * never builds, numbers or orders notifications (that is the delivery pipeline's job), so a new channel
 * is one file plus its registration.
 */
import type { Notification, PayloadContent } from '../notify/notification-model.js';

/** A notification rendered for the wire (version and MIME type already applied). */
export interface RenderedNotification {
  /** handshake | heartbeat | event-notification (what the bundle is, for channels that care). */
  type: 'handshake' | 'heartbeat' | 'event-notification';
  /** The serialised notification Bundle. */
  body: string;
  /** The MIME type of `body` (the subscription's `channel.payload`, without parameters Clarion consumed). */
  contentType: string;
  /**
   * The neutral notification `body` was rendered from (already cut to the content level), for channels
   * that describe it in their own words (email's human-readable body) instead of re-parsing `body`.
   */
  notification?: Notification;
}

/** Where and how to deliver, from the subscription. */
export interface ChannelTarget {
  subscriptionId: string;
  endpoint?: string;
  /** `channel.header` values as sent by the client (`Name: value`). */
  headers: string[];
  /** Bound for one attempt (ms), from `backport-timeout` or the server default. */
  timeoutMs: number;
}

/** Error codes of http://terminology.hl7.org/CodeSystem/subscription-error, plus Clarion's own refusal. */
export type DeliveryErrorCode = 'dns-resolution-error' | 'no-response' | 'error-response' | 'endpoint-refused';

export type DeliveryResult =
  | { ok: true; status?: number }
  | { ok: false; code: DeliveryErrorCode; message: string; httpStatus?: number };

export interface Channel {
  /** The channel code (`rest-hook`, `websocket`, `email`, `message`, or a custom code). */
  readonly type: string;
  /** Why an endpoint is unusable for this channel (checked at Subscription create), or undefined. */
  checkEndpoint(endpoint: string | undefined): string | undefined;
  /**
   * Why this channel cannot carry `channel.payload` (`contentType`, without fhirVersion) at `content`
   * level, or undefined (checked at Subscription create). Without it, the server's FHIR MIME types apply.
   */
  checkPayload?(contentType: string, content: PayloadContent): string | undefined;
  deliver(target: ChannelTarget, notification: RenderedNotification): Promise<DeliveryResult>;
  close(): Promise<void>;
}
