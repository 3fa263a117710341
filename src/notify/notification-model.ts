/**
 * The version-neutral notification (R5 semantics): what a subscription notification says, already
 * shaped by the payload content level, with absolute references and the entries to carry. The wire
 * renderers in src/versions (R4 Parameters in a history Bundle, R4B and R5 SubscriptionStatus) only
 * change its form.
 */

export type NotificationType = 'handshake' | 'heartbeat' | 'event-notification' | 'query-status' | 'query-event';
/** Subscription status as reported in notifications (R5 adds entered-in-error). */
export type SubscriptionStatusCode = 'requested' | 'active' | 'error' | 'off' | 'entered-in-error';
export type PayloadContent = 'empty' | 'id-only' | 'full-resource';
/** What happened to a resource: the focus's triggering interaction, or `read` for included resources. */
export type ResourceInteraction = 'create' | 'update' | 'delete' | 'read';

/** Any FHIR resource as JSON (the notification layer does not depend on a FHIR version). */
export interface FhirResource {
  resourceType: string;
  id?: string;
  meta?: { versionId?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface CodeableConcept {
  coding?: { system?: string; version?: string; code?: string; display?: string }[];
  text?: string;
}

/** A resource an event is about: given by reference (`Type/id`, or an absolute URL), by content, or both. */
export interface EventResourceInput {
  reference?: string;
  resource?: FhirResource;
  /** Defaults to `read` (a GET entry). */
  interaction?: ResourceInteraction;
}

export interface NotificationEventInput {
  eventNumber: number;
  /** When the event happened on the server (instant). */
  timestamp?: string;
  focus?: EventResourceInput;
  additionalContext?: EventResourceInput[];
}

/** What the builder needs to know about the subscription at the time the notification is generated. */
export interface SubscriptionSnapshot {
  id: string;
  /** Canonical URL of the topic. */
  topicUrl: string;
  status: SubscriptionStatusCode;
  content: PayloadContent;
}

export interface NotificationInput {
  subscription: SubscriptionSnapshot;
  type: NotificationType;
  /** Events generated since the subscription started, this notification's included (not counting handshakes/heartbeats). */
  eventsSinceSubscriptionStart: number;
  events?: NotificationEventInput[];
  errors?: CodeableConcept[];
  /** The server's FHIR base URL (`https://example.org/fhir`), used to make references absolute. */
  baseUrl: string;
}

export interface NotificationEvent {
  eventNumber: number;
  timestamp?: string;
  /** Absolute URL of the focus resource (absent for `empty` content). */
  focus?: string;
  /** Absolute URLs (empty for `empty` content). */
  additionalContext: string[];
}

/** One Bundle entry besides the status: a focus or context resource, as the content level allows. */
export interface NotificationEntry {
  fullUrl: string;
  /** Present only for `full-resource` (and only when the content is available, e.g. not after a delete). */
  resource?: FhirResource;
  request: { method: 'GET' | 'POST' | 'PUT' | 'DELETE'; url: string };
  response: { status: string };
}

export interface Notification {
  /** Id of the status resource (also its `urn:uuid:` fullUrl). */
  id: string;
  /** When the notification was generated (Bundle.timestamp). */
  timestamp: string;
  type: NotificationType;
  status: SubscriptionStatusCode;
  content: PayloadContent;
  subscriptionId: string;
  /** Absolute reference to the Subscription, without `_history`. */
  subscriptionReference: string;
  /** `{base}/Subscription/{id}/$status`: the request the status entry answers. */
  statusRequestUrl: string;
  /** The topic canonical; absent for `empty` content unless asked for (the IG says SHOULD NOT). */
  topic?: string;
  eventsSinceSubscriptionStart: number;
  events: NotificationEvent[];
  errors: CodeableConcept[];
  entries: NotificationEntry[];
}
