/**
 * Validation against the Subscriptions Backport IG 1.1.0 profiles for tests: the R4 base definitions
 * (via ensureR4Schema) plus the IG snapshots adjusted for @medplum/core@4.5.2 (shared fixtures
 * `ig/snapshots/medplum/`, see its README for why the adjusted set is needed). Indexed once per process.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { indexStructureDefinitionBundle, OperationOutcomeError, validateResource } from '@medplum/core';
import type { Bundle, OperationOutcomeIssue, Resource, StructureDefinition } from 'fhir/r4.js';
import { ensureR4Schema } from '../../src/fhir/r4-schema.js';

/** The shared fixtures folder (`/work/shared/fixtures` seen from the repo as `../shared/fixtures`). */
export const FIXTURES_DIR = new URL('../../../shared/fixtures/', import.meta.url).pathname;
export const IG_DIR = join(FIXTURES_DIR, 'ig');
const SNAPSHOT_DIR = join(IG_DIR, 'snapshots', 'medplum');

const IG_BASE = 'http://hl7.org/fhir/uv/subscriptions-backport/StructureDefinition/';
export const IG_PROFILES = {
  subscription: `${IG_BASE}backport-subscription`,
  statusR4: `${IG_BASE}backport-subscription-status-r4`,
  notificationR4: `${IG_BASE}backport-subscription-notification-r4`,
} as const;

let profiles: Map<string, StructureDefinition> | undefined;

/** Indexes R4 base definitions and the IG R4 profiles (not the R4B one: R4 has no SubscriptionStatus). */
export function ensureIgProfiles(): ReadonlyMap<string, StructureDefinition> {
  if (profiles) return profiles;
  ensureR4Schema();
  const sds = readdirSync(SNAPSHOT_DIR)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(SNAPSHOT_DIR, f), 'utf8')) as StructureDefinition)
    .filter((sd) => sd.id !== 'backport-subscription-notification')
    .map(withoutNestedPartMinimum);
  const bundle: Bundle<StructureDefinition> = { resourceType: 'Bundle', type: 'collection', entry: sds.map((resource) => ({ resource })) };
  indexStructureDefinitionBundle(bundle);
  profiles = new Map(sds.map((sd) => [sd.url, sd]));
  return profiles;
}

/**
 * Works around a @medplum/core@4.5.2 quirk the snapshots README does not list: `part` 1..* inside the
 * `notificationEvent` slice is read as a 1..* minimum of the slice itself, so every status without a
 * notification-event (handshake, heartbeat, query-status) fails. The rule stays checked: invariant
 * `backport-subscription-status-r4-mp-7` requires `part.exists()` on every notification-event.
 */
function withoutNestedPartMinimum(sd: StructureDefinition): StructureDefinition {
  if (sd.id !== 'backport-subscription-status-r4') return sd;
  const copy = structuredClone(sd);
  for (const el of copy.snapshot?.element ?? []) {
    if (el.id === 'Parameters.parameter:notificationEvent.part') el.min = 0;
  }
  return copy;
}

/** The error and fatal issues of validating `resource` against `profileUrl` (empty when valid). */
export function igValidationErrors(resource: Resource, profileUrl: string): OperationOutcomeIssue[] {
  const profile = ensureIgProfiles().get(profileUrl);
  if (!profile) throw new Error(`unknown IG profile ${profileUrl}`);
  let issues: OperationOutcomeIssue[];
  try {
    issues = validateResource(resource, { profile: profile as never }) as OperationOutcomeIssue[];
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    issues = (err.outcome.issue ?? []) as OperationOutcomeIssue[];
  }
  return issues.filter((i) => i.severity === 'error' || i.severity === 'fatal');
}

/** Human-readable one-liners of issues, for assertion messages. */
export function describeIssues(issues: OperationOutcomeIssue[]): string[] {
  return issues.map((i) => `${(i.expression ?? []).join(',')}: ${i.diagnostics ?? i.details?.text ?? i.code}`);
}

/**
 * Errors of a R4 notification Bundle: the Bundle against backport-subscription-notification-r4 and
 * its first entry against backport-subscription-status-r4 (the validator does not descend into the
 * entry's profile, as the snapshots README explains).
 */
export function r4NotificationErrors(bundle: Bundle): string[] {
  const out = describeIssues(igValidationErrors(bundle, IG_PROFILES.notificationR4));
  const status = bundle.entry?.[0]?.resource;
  if (status) out.push(...describeIssues(igValidationErrors(status, IG_PROFILES.statusR4)).map((s) => `entry[0].resource ${s}`));
  return out;
}

/** Errors of every Parameters of a `$status` searchset against backport-subscription-status-r4, plus the base Bundle rules. */
export function r4StatusSearchsetErrors(bundle: Bundle): string[] {
  ensureIgProfiles();
  const out: string[] = [];
  try {
    validateResource(bundle);
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) throw err;
    out.push(...describeIssues(((err.outcome.issue ?? []) as OperationOutcomeIssue[]).filter((i) => i.severity === 'error')));
  }
  (bundle.entry ?? []).forEach((e, i) => {
    if (e.resource) out.push(...describeIssues(igValidationErrors(e.resource, IG_PROFILES.statusR4)).map((s) => `entry[${i}].resource ${s}`));
  });
  return out;
}
