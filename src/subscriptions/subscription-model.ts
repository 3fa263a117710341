/**
 * The version-neutral Subscription (R5 semantics) that the matching, numbering and delivery pipeline
 * works with. Wire forms (R4 backport Subscription with extensions, R4B, R5) are converted to and from
 * it in src/versions only.
 */
import type { PayloadContent } from '../notify/notification-model.js';

export type SubscriptionStatus = 'requested' | 'active' | 'error' | 'off';

/** One filter (`filterBy` in R5; a `backport-filter-criteria` string in R4/R4B), AND-joined with the others. */
export interface SubscriptionFilter {
  /** Resource type the filter applies to (from `Type?param=v` or the topic trigger); undefined = the topic's. */
  resourceType?: string;
  /** Search parameter code, e.g. `patient`. */
  parameter: string;
  /** Search modifier (`not`, `exact`, …) if any. */
  modifier?: string;
  /** The value as sent, including any search prefix (`gt5`), e.g. `Patient/123` (percent-decoded). */
  value: string;
  /**
   * Where the filter came from on the wire, for error messages only (e.g.
   * `Subscription.criteria.extension[0]`); one wire filter string may hold several filters.
   */
  source?: string;
}

export interface SubscriptionChannel {
  /** Base channel code: rest-hook | websocket | email | message. */
  type: string;
  /** A custom channel chosen with backport-channel-type (system|code). */
  custom?: { system?: string; code: string };
  endpoint?: string;
  /** `channel.header` values, exactly as the client sent them. */
  headers: string[];
  /** Seconds of channel silence before a heartbeat; undefined = no heartbeats. */
  heartbeatPeriod?: number;
  /** Seconds one delivery attempt may take. */
  timeout?: number;
  /** Most events (focus resources) per notification. */
  maxCount?: number;
}

export interface SubscriptionSpec {
  id: string;
  /** Topic canonical (may carry `|version`). */
  topic: string;
  status: SubscriptionStatus;
  reason?: string;
  /** Instant after which the subscription turns `off`. */
  end?: string;
  filters: SubscriptionFilter[];
  channel: SubscriptionChannel;
  /** MIME type of notifications (`channel.payload`), without the parameters Clarion consumes. */
  contentType: string;
  content: PayloadContent;
  /** Wire version of notifications: R4 (backport Parameters) unless `fhirVersion=4.3` asked for R4B. */
  notificationVersion: 'R4' | 'R4B' | 'R5';
  /** Server-recorded error text (Subscription.error in R4/R4B). */
  error?: string;
}
