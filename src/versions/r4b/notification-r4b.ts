/**
 * Neutral notification → the R4B backport wire form (IG 1.0.0/1.1.0): the status is an R4B
 * SubscriptionStatus resource (counts as strings: R4B has no integer64), inside a `history` Bundle
 * (backport-subscription-notification) laid out like the R4 one; `$status` answers are searchsets of
 * SubscriptionStatus. Element order follows the IG's R4B examples.
 */
import type { Bundle, SubscriptionStatus } from 'fhir/r4b.js';
import { historyNotificationBundle, statusSearchsetBundle } from '../backport-bundles.js';
import type { Notification } from '../../notify/notification-model.js';

export const R4B_NOTIFICATION_PROFILE = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-subscription-notification';

/** The status of a notification as an R4B SubscriptionStatus. */
export function subscriptionStatusR4B(n: Notification): SubscriptionStatus {
  return {
    resourceType: 'SubscriptionStatus',
    id: n.id,
    type: n.type,
    subscription: { reference: n.subscriptionReference },
    ...(n.topic ? { topic: n.topic } : {}),
    // R4B's subscription-status code system has no entered-in-error; `error` is the closest code.
    status: n.status === 'entered-in-error' ? 'error' : n.status,
    eventsSinceSubscriptionStart: String(n.eventsSinceSubscriptionStart),
    ...(n.events.length > 0
      ? {
          notificationEvent: n.events.map((e) => ({
            eventNumber: String(e.eventNumber),
            ...(e.timestamp ? { timestamp: e.timestamp } : {}),
            ...(e.focus ? { focus: { reference: e.focus } } : {}),
            ...(e.additionalContext.length > 0 ? { additionalContext: e.additionalContext.map((reference) => ({ reference })) } : {}),
          })),
        }
      : {}),
    ...(n.errors.length > 0 ? { error: n.errors } : {}),
  };
}

/** A notification as an R4B history Bundle (first entry the SubscriptionStatus). */
export function notificationBundleR4B(n: Notification): Bundle {
  return historyNotificationBundle<Bundle>(n, subscriptionStatusR4B(n), R4B_NOTIFICATION_PROFILE);
}

/** The answer of `$status` on R4B: a searchset of SubscriptionStatus (type query-status). */
export function statusSearchsetR4B(statuses: readonly Notification[], options: { timestamp?: string; selfUrl?: string } = {}): Bundle {
  return statusSearchsetBundle<Bundle>(statuses, subscriptionStatusR4B, options);
}
