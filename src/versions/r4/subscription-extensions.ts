/**
 * The R4 backport Subscription's extension URLs (IG 1.1.0 §2) and the cross-version extensions it must
 * not carry instead of them.
 */
const IG_SD = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';

export const BACKPORT_EXT = {
  filterCriteria: `${IG_SD}backport-filter-criteria`,
  payloadContent: `${IG_SD}backport-payload-content`,
  heartbeatPeriod: `${IG_SD}backport-heartbeat-period`,
  timeout: `${IG_SD}backport-timeout`,
  maxCount: `${IG_SD}backport-max-count`,
  channelType: `${IG_SD}backport-channel-type`,
} as const;

export const BACKPORT_SUBSCRIPTION_PROFILE = `${IG_SD}backport-subscription`;

/** R5 (5.0) and R4B (4.3) cross-version extension prefixes for Subscription elements. */
export const SUBSCRIPTION_XVER_PREFIXES = [
  'http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.',
  'http://hl7.org/fhir/4.3/StructureDefinition/extension-Subscription.',
] as const;

/**
 * R5 Subscription elements that the backport (or R4 core) already represents: a cross-version
 * extension for one of them would be a second, conflicting way to say the same thing (IG 1.1.0:
 * "cross version extensions SHOULD NOT be used on R4 subscriptions to describe any elements also
 * described by this guide"), so it is rejected. Elements without a backport form (identifier, name,
 * managingEntity — 1.2.0-ballot adds identifier this way) are accepted and kept.
 */
export const BACKPORT_REPRESENTED_ELEMENTS = new Set([
  'status', 'topic', 'contact', 'end', 'reason', 'filterBy', 'channelType', 'endpoint', 'parameter',
  'heartbeatPeriod', 'timeout', 'contentType', 'content', 'maxCount',
]);

/** The R5 Subscription element a cross-version extension URL stands for (`filterBy`), if it is one. */
export function subscriptionXverElement(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  const prefix = SUBSCRIPTION_XVER_PREFIXES.find((p) => url.startsWith(p));
  return prefix ? url.slice(prefix.length).split('.')[0] : undefined;
}
