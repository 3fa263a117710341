/**
 * The wire form of the `$status` and `$events` answers, in the notification FHIR version of the
 * subscription(s) concerned:
 * - `$status`: a searchset of status resources (R4 Parameters, R4B/R5 SubscriptionStatus) with
 *   search.mode = match and no request/response; an empty searchset has no `entry` at all (FHIR JSON
 *   has no empty arrays);
 * - `$events`: the notification Bundle (R4/R4B history with request and response on every entry, R5
 *   subscription-notification). A warning about the answer (e.g. events no longer retained) goes where
 *   each version allows one without adding entries: R4/R4B `entry[0].response.outcome` (the status
 *   entry is the response to the status request), R5 `Bundle.issues`. `next` links to the rest of a
 *   range cut by the server's per-call limit.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import type { Notification } from '../notify/notification-model.js';
import { notificationBundleR4, statusSearchsetR4 } from './r4/notification-r4.js';
import type { NotificationVersion } from './r4/subscription-payload-r4.js';
import { notificationBundleR4B, statusSearchsetR4B } from './r4b/notification-r4b.js';
import { notificationBundleR5, statusSearchsetR5 } from './r5/notification-r5.js';

/** A Bundle of any version, as plain JSON (the REST layer sends it as is). */
export interface WireBundle {
  resourceType: 'Bundle';
  type: string;
  entry?: { response?: { status: string; outcome?: unknown }; [k: string]: unknown }[];
  link?: { relation: string; url: string }[];
  [k: string]: unknown;
}

export function statusSearchsetBundle(
  version: NotificationVersion,
  statuses: readonly Notification[],
  options: { timestamp?: string; selfUrl?: string } = {},
): WireBundle {
  const render = version === 'R4B' ? statusSearchsetR4B : version === 'R5' ? statusSearchsetR5 : statusSearchsetR4;
  const bundle = render(statuses, options) as unknown as WireBundle;
  if (bundle.entry?.length === 0) delete bundle.entry;
  return bundle;
}

export function eventsBundle(
  version: NotificationVersion,
  notification: Notification,
  options: { warning?: string; selfUrl?: string; nextUrl?: string } = {},
): WireBundle {
  const render = version === 'R4B' ? notificationBundleR4B : version === 'R5' ? notificationBundleR5 : notificationBundleR4;
  const bundle = render(notification) as unknown as WireBundle;
  const links = [
    ...(options.selfUrl ? [{ relation: 'self', url: options.selfUrl }] : []),
    ...(options.nextUrl ? [{ relation: 'next', url: options.nextUrl }] : []),
  ];
  if (links.length > 0) bundle.link = links;
  if (options.warning) {
    const outcome: OperationOutcome = {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'warning', code: 'incomplete', diagnostics: options.warning }],
    };
    const status = bundle.entry?.[0];
    if (version === 'R5') bundle.issues = outcome;
    else if (status?.response) status.response.outcome = outcome;
  }
  return bundle;
}
