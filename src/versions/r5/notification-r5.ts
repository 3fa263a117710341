/**
 * Neutral notification → native R5: a `subscription-notification` Bundle whose first entry is an R5
 * SubscriptionStatus (bdl-13). integer64 values (eventsSinceSubscriptionStart, eventNumber) are JSON
 * strings in R5. The status entry has no request/response (R5 allows them only on the content entries
 * of a subscription-notification, where they say what happened to the resource); `$status` and
 * `$events` answers follow R5 (searchset of SubscriptionStatus; `$events` returns a notification Bundle).
 */
import type { Bundle, BundleEntry, FhirResource, SubscriptionStatus } from 'fhir/r5.js';
import type { Notification } from '../../notify/notification-model.js';
import { statusSearchsetBundle } from '../backport-bundles.js';

/** The status of a notification as an R5 SubscriptionStatus. */
export function subscriptionStatusR5(n: Notification): SubscriptionStatus {
  return {
    resourceType: 'SubscriptionStatus',
    id: n.id,
    status: n.status,
    type: n.type,
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
    subscription: { reference: n.subscriptionReference },
    ...(n.topic ? { topic: n.topic } : {}),
    ...(n.errors.length > 0 ? { error: n.errors } : {}),
  } as unknown as SubscriptionStatus;
}

/** A notification as an R5 subscription-notification Bundle. */
export function notificationBundleR5(n: Notification): Bundle {
  const status: BundleEntry = { fullUrl: `urn:uuid:${n.id}`, resource: subscriptionStatusR5(n) };
  return {
    resourceType: 'Bundle',
    type: 'subscription-notification',
    timestamp: n.timestamp,
    entry: [
      status,
      ...n.entries.map((e) => ({
        fullUrl: e.fullUrl,
        ...(e.resource ? { resource: e.resource as FhirResource } : {}),
        request: { ...e.request },
        response: { ...e.response },
      })),
    ],
  };
}

/** The answer of `$status` on R5: a searchset of SubscriptionStatus. */
export function statusSearchsetR5(statuses: readonly Notification[], options: { timestamp?: string; selfUrl?: string } = {}): Bundle {
  return statusSearchsetBundle<Bundle>(statuses, subscriptionStatusR5, options);
}
