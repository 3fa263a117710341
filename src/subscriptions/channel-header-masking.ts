/**
 * `channel.header` often carries a secret the server sends to the endpoint (`Authorization: Bearer …`).
 * The IG says Subscriptions are not secure storage (safety_security.md) and suggests masking header
 * values for anyone but the owner. Clarion has no authentication yet, so every client is the owner and
 * nothing is masked; this is the one decision point that reads, searches and history will call (see
 * README "Subscriptions (R4 backport)") once there are users.
 */
import type { SubscriptionSpec } from './subscription-model.js';

/** Who is looking at a Subscription. */
export interface SubscriptionViewer {
  /** The viewer created (owns) the subscription, or administers the server. */
  isOwner: boolean;
}

/** Today's only viewer: without authentication every client is the owner. */
export const OWNER_VIEWER: SubscriptionViewer = { isOwner: true };

export const MASKED_VALUE = '***';

/** `Authorization: Bearer x` → `Authorization: ***` (the name stays, so the owner of a copy knows what was set). */
export function maskHeader(header: string): string {
  const colon = header.indexOf(':');
  const eq = header.indexOf('=');
  const at = colon >= 0 && (eq < 0 || colon < eq) ? colon : eq;
  return at > 0 ? `${header.slice(0, at)}${header[at] === ':' ? ': ' : '='}${MASKED_VALUE}` : MASKED_VALUE;
}

/** The subscription as `viewer` may see it: header values masked unless the viewer is the owner. */
export function maskChannelHeaders(spec: SubscriptionSpec, viewer: SubscriptionViewer): SubscriptionSpec {
  if (viewer.isOwner || spec.channel.headers.length === 0) return spec;
  return { ...spec, channel: { ...spec.channel, headers: spec.channel.headers.map(maskHeader) } };
}
