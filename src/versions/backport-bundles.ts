/**
 * The Bundle layouts R4 and R4B backport notifications share; only the status resource differs
 * (Parameters on R4, SubscriptionStatus on R4B), so each version passes its own and its profile. The
 * `$status` searchset is the same on R5 too.
 */
import type { Notification } from '../notify/notification-model.js';

/**
 * A `history` Bundle: first the status, with request `GET {base}/Subscription/{id}/$status` and response
 * 200 (the IG's rule for the status entry), then the content entries (every history entry needs request
 * and response: bdl-3, bdl-4).
 */
export function historyNotificationBundle<B>(n: Notification, status: object, profile: string): B {
  return {
    resourceType: 'Bundle',
    meta: { profile: [profile] },
    type: 'history',
    timestamp: n.timestamp,
    entry: [
      { fullUrl: `urn:uuid:${n.id}`, resource: status, request: { method: 'GET', url: n.statusRequestUrl }, response: { status: '200' } },
      ...n.entries.map((e) => ({
        fullUrl: e.fullUrl,
        ...(e.resource ? { resource: e.resource } : {}),
        request: { ...e.request },
        response: { ...e.response },
      })),
    ],
  } as B;
}

/** The answer of `$status`: a `searchset` of status resources (type query-status), no request/response (bdl-3). */
export function statusSearchsetBundle<B>(
  statuses: readonly Notification[],
  toStatus: (n: Notification) => object,
  options: { timestamp?: string; selfUrl?: string } = {},
): B {
  return {
    resourceType: 'Bundle',
    type: 'searchset',
    ...(options.timestamp ? { timestamp: options.timestamp } : {}),
    total: statuses.length,
    ...(options.selfUrl ? { link: [{ relation: 'self', url: options.selfUrl }] } : {}),
    entry: statuses.map((n) => ({ fullUrl: `urn:uuid:${n.id}`, resource: toStatus(n), search: { mode: 'match' } })),
  } as B;
}
