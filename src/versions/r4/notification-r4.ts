/**
 * Neutral notification → the R4 backport wire form (IG 1.1.0):
 * - the status is a Parameters resource (backport-subscription-status-r4), with
 *   `events-since-subscription-start` and `event-number` as strings (R4 has no integer64);
 * - a notification is a `history` Bundle (backport-subscription-notification-r4) whose first entry is
 *   that Parameters, with request `GET {base}/Subscription/{id}/$status` and response 200 (the IG's
 *   rule for the status entry), followed by the content entries (every history entry needs request and
 *   response: bdl-3, bdl-4);
 * - a `$status` answer is a `searchset` Bundle of such Parameters without request/response (bdl-3).
 * Parameter order follows the IG examples: subscription, topic, status, type,
 * events-since-subscription-start, notification-event…, error.
 */
import type { Bundle, Parameters, ParametersParameter } from 'fhir/r4.js';
import { historyNotificationBundle, statusSearchsetBundle } from '../backport-bundles.js';
import type { Notification, NotificationEvent } from '../../notify/notification-model.js';

export const R4_STATUS_PROFILE = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-status-r4';
export const R4_NOTIFICATION_PROFILE = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification-r4';

/** R4 Subscription.status has no entered-in-error; it is reported as `error` (closest meaning). */
function r4Status(status: Notification['status']): string {
  return status === 'entered-in-error' ? 'error' : status;
}

function eventParameter(e: NotificationEvent): ParametersParameter {
  return {
    name: 'notification-event',
    part: [
      { name: 'event-number', valueString: String(e.eventNumber) },
      ...(e.timestamp ? [{ name: 'timestamp', valueInstant: e.timestamp }] : []),
      ...(e.focus ? [{ name: 'focus', valueReference: { reference: e.focus } }] : []),
      ...e.additionalContext.map((reference) => ({ name: 'additional-context', valueReference: { reference } })),
    ],
  };
}

/** The status of a notification as a backport-subscription-status-r4 Parameters. */
export function statusParametersR4(n: Notification): Parameters {
  return {
    resourceType: 'Parameters',
    id: n.id,
    meta: { profile: [R4_STATUS_PROFILE] },
    parameter: [
      { name: 'subscription', valueReference: { reference: n.subscriptionReference } },
      ...(n.topic ? [{ name: 'topic', valueCanonical: n.topic }] : []),
      { name: 'status', valueCode: r4Status(n.status) },
      { name: 'type', valueCode: n.type },
      { name: 'events-since-subscription-start', valueString: String(n.eventsSinceSubscriptionStart) },
      ...n.events.map(eventParameter),
      ...n.errors.map((e) => ({ name: 'error', valueCodeableConcept: e })),
    ],
  };
}

/** A notification (handshake, heartbeat, event-notification, query-event, …) as an R4 history Bundle. */
export function notificationBundleR4(n: Notification): Bundle {
  return historyNotificationBundle<Bundle>(n, statusParametersR4(n), R4_NOTIFICATION_PROFILE);
}

/** The answer of `$status`: a searchset Bundle with one status Parameters per subscription (type query-status). */
export function statusSearchsetR4(statuses: readonly Notification[], options: { timestamp?: string; selfUrl?: string } = {}): Bundle {
  return statusSearchsetBundle<Bundle>(statuses, statusParametersR4, options);
}
