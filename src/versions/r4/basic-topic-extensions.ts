/**
 * The R4 representation of a topic (IG 1.2.0-ballot, fhir-candle): a `Basic` resource coded
 * `http://hl7.org/fhir/fhir-types#SubscriptionTopic` carrying the R5 (or R4B) SubscriptionTopic
 * elements as cross-version extensions. Published topics use both the 5.0 and the 4.3 prefixes (the
 * IG's own example mixes them), so both are read; Clarion writes 5.0.
 */
export const XVER_PREFIXES = [
  'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.',
  'http://hl7.org/fhir/4.3/StructureDefinition/extension-SubscriptionTopic.',
] as const;

export const XVER_WRITE_PREFIX = XVER_PREFIXES[0];

export const FHIR_TYPES_SYSTEM = 'http://hl7.org/fhir/fhir-types';

/** IG 1.2.0-ballot extension on notificationShape (R6 `relatedQuery`). */
export const RELATED_QUERY_URL = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/backport-related-query';

export const CORE_SD_PREFIX = 'http://hl7.org/fhir/StructureDefinition/';

/** The SubscriptionTopic element an extension URL stands for (`resourceTrigger`), if it is a cross-version one. */
export function xverElement(url: unknown): string | undefined {
  if (typeof url !== 'string') return undefined;
  const prefix = XVER_PREFIXES.find((p) => url.startsWith(p));
  return prefix ? url.slice(prefix.length) : undefined;
}
