/**
 * Trigger evaluation on every fixture topic (/work/shared/fixtures/topics) and every built-in topic,
 * plus synthetic topics pinning down the R5 rules (resultForCreate/resultForDelete, requireBoth, OR of
 * triggers, AND of query and FHIRPath criteria) and the notification shape helpers.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import { BUILTIN_TOPICS } from '../../src/topics/builtin/index.js';
import type { ResourceTrigger, SubscriptionTopic, TriggerInteraction } from '../../src/topics/topic-model.js';
import {
  additionalContext,
  compileTopic,
  evaluateTriggers,
  revIncludeQueries,
  rewriteBooleanUnion,
  type CompiledTopic,
} from '../../src/topics/trigger-evaluator.js';
import { topicFromAnyForm } from '../../src/versions/topic-format.js';
import { FIXTURES_DIR } from '../support/ig-validator.js';

const FIXTURES = join(FIXTURES_DIR, 'topics');
const fixture = (file: string): CompiledTopic => compileTopic(topicFromAnyForm(JSON.parse(readFileSync(join(FIXTURES, file), 'utf8'))));
const builtin = (name: string): CompiledTopic => compileTopic(topicFromAnyForm(BUILTIN_TOPICS.find((d) => d.source === `builtin:${name}.json`)!.json));

const res = (resourceType: string, fields: Record<string, unknown> = {}): Resource => ({ resourceType, id: 'r1', ...fields });
/** Problems of the triggers (fixture shapes name includes that do not exist in R4, e.g. `Encounter:observation`). */
const triggerProblems = (t: CompiledTopic): string[] => t.problems.filter((p) => p.startsWith('resourceTrigger'));
const enc = (status: string, fields: Record<string, unknown> = {}): Resource => res('Encounter', { status, class: { code: 'IMP' }, ...fields });

function fires(t: CompiledTopic, interaction: TriggerInteraction, previous?: Resource, current?: Resource): boolean {
  const resourceType = (current ?? previous)!.resourceType;
  return evaluateTriggers(t, { resourceType, interaction, ...(previous ? { previous } : {}), ...(current ? { current } : {}) });
}

/** The standard "Encounter reaches status X" behaviour (create/update only, previous must differ). */
function expectStateEntry(t: CompiledTopic, target: string, other: string): void {
  expect(triggerProblems(t)).toEqual([]);
  expect(fires(t, 'create', undefined, enc(target)), 'create in target state').toBe(true);
  expect(fires(t, 'create', undefined, enc(other)), 'create in other state').toBe(false);
  expect(fires(t, 'update', enc(other), enc(target)), 'update other → target').toBe(true);
  expect(fires(t, 'update', enc(target), enc(target)), 'update target → target').toBe(false);
  expect(fires(t, 'update', enc(target), enc(other)), 'update target → other').toBe(false);
  expect(fires(t, 'update', enc(other), enc(other)), 'update other → other').toBe(false);
  expect(fires(t, 'delete', enc(target)), 'delete').toBe(false);
  expect(fires(t, 'update', res('Observation', { status: target }), res('Observation', { status: target })), 'other resource type').toBe(false);
}

function topic(triggers: Partial<ResourceTrigger>[], extra: Partial<SubscriptionTopic> = {}): CompiledTopic {
  return compileTopic({
    url: 'http://example.org/topic',
    status: 'active',
    derivedFrom: [],
    resourceTriggers: triggers.map((t) => ({ resource: 'Encounter', supportedInteraction: [], ...t })),
    eventTriggers: [],
    canFilterBy: [],
    notificationShape: [],
    ...extra,
  });
}

describe('fixture topics', () => {
  it('covers every fixture file', () => {
    expect(readdirSync(FIXTURES).length).toBe(14);
  });

  for (const file of [
    'hl7.fhir.us.ecr__r4__basic-subscriptiontopic-encounter-complete.json',
    'subscriptions__r4__basic-subscriptiontopic-encounter-complete.json',
    'subscriptions__r4b__subscriptiontopic-encounter-complete.json',
    'tests-r4b__SubscriptionTopic-encounter-complete.json',
    'tests-r4b__SubscriptionTopic-encounter-complete-qualified.json',
  ]) {
    it(`${file}: fires when an Encounter becomes finished`, () => expectStateEntry(fixture(file), 'finished', 'in-progress'));
  }

  for (const file of [
    'subscriptions__r5__subscriptiontopic-encounter-complete.json',
    'tests-r5__SubscriptionTopic-encounter-complete.json',
    'tests-r5__subscriptiontopic-encounter-complete-fhirpath.json',
    'tests-r5__subscriptiontopic-encounter-complete-query.json',
  ]) {
    it(`${file}: fires when an Encounter becomes completed (R5 code)`, () => expectStateEntry(fixture(file), 'completed', 'in-progress'));
  }

  it('the FHIRPath-only and query-only variants are each evaluated alone', () => {
    const fp = fixture('tests-r5__subscriptiontopic-encounter-complete-fhirpath.json');
    expect(fp.triggers[0].query).toBeUndefined();
    expect(fp.triggers[0].fhirPath).toBeDefined();
    const q = fixture('tests-r5__subscriptiontopic-encounter-complete-query.json');
    expect(q.triggers[0].query).toBeDefined();
    expect(q.triggers[0].fhirPath).toBeUndefined();
  });

  it('encounter-started (eCR) fires when an Encounter becomes in-progress', () => {
    expectStateEntry(fixture('hl7.fhir.us.ecr__r4__basic-subscriptiontopic-encounter-started.json'), 'in-progress', 'planned');
  });

  it('encounter-create-interaction fires on every create and nothing else', () => {
    const t = fixture('tests-r5__subscriptiontopic-encounter-create-interaction.json');
    expect(triggerProblems(t)).toEqual([]);
    expect(t.problems).toEqual(["notificationShape[0].include 'Encounter:observation': 'observation' is not a reference search parameter of Encounter"]);
    expect(fires(t, 'create', undefined, enc('planned'))).toBe(true);
    expect(fires(t, 'create', undefined, enc('finished'))).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('finished'))).toBe(false);
    expect(fires(t, 'delete', enc('planned'))).toBe(false);
    expect(fires(t, 'create', undefined, res('Patient'))).toBe(false);
  });

  it('US Core patient-data-feed: several triggers over four resource types, OR-ed', () => {
    const t = fixture('subscriptions__r4__basic-subscriptiontopic-us-core-patient.json');
    expect(triggerProblems(t)).toEqual([]);
    expect(t.resourceTypes.sort()).toEqual(['DiagnosticReport', 'DocumentReference', 'Encounter', 'Observation']);
    // Encounter: status change, create, delete, location change
    expect(fires(t, 'update', enc('planned'), enc('in-progress'))).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('planned'))).toBe(false);
    expect(fires(t, 'create', undefined, enc('planned'))).toBe(true);
    expect(fires(t, 'delete', enc('planned'))).toBe(true);
    const loc = (id: string) => ({ location: [{ location: { reference: `Location/${id}` } }] });
    expect(fires(t, 'update', enc('planned', loc('a')), enc('planned', loc('b')))).toBe(true);
    expect(fires(t, 'update', enc('planned', loc('a')), enc('planned', loc('a')))).toBe(false);
    expect(fires(t, 'update', enc('planned'), enc('planned', loc('a')))).toBe(true);
    // Observation: laboratory only
    const lab = { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }] };
    const vital = { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }] };
    expect(fires(t, 'update', res('Observation', { status: 'preliminary', ...lab }), res('Observation', { status: 'final', ...lab }))).toBe(true);
    expect(fires(t, 'update', res('Observation', { status: 'preliminary', ...vital }), res('Observation', { status: 'final', ...vital }))).toBe(false);
    expect(fires(t, 'update', res('Observation', { status: 'final', valueString: 'a', ...lab }), res('Observation', { status: 'final', valueString: 'b', ...lab }))).toBe(true);
    expect(fires(t, 'update', res('Observation', { status: 'final', valueString: 'a', ...lab }), res('Observation', { status: 'final', valueString: 'a', ...lab }))).toBe(false);
    expect(fires(t, 'create', undefined, res('Observation', { status: 'final', ...lab }))).toBe(true);
    expect(fires(t, 'delete', res('Observation', { status: 'final', ...lab }))).toBe(true);
    // DocumentReference: any interaction (no criteria)
    expect(fires(t, 'update', res('DocumentReference', { status: 'current' }), res('DocumentReference', { status: 'current' }))).toBe(true);
    expect(fires(t, 'delete', res('DocumentReference', { status: 'current' }))).toBe(true);
    // DiagnosticReport: LAB only
    const labDr = { category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0074', code: 'LAB' }] }] };
    expect(fires(t, 'update', res('DiagnosticReport', { status: 'preliminary', ...labDr }), res('DiagnosticReport', { status: 'final', ...labDr }))).toBe(true);
    expect(fires(t, 'update', res('DiagnosticReport', { status: 'preliminary' }), res('DiagnosticReport', { status: 'final' }))).toBe(false);
    // not a topic type
    expect(fires(t, 'create', undefined, res('Patient'))).toBe(false);
  });

  it('Da Vinci PAS ClaimResponse: query and FHIRPath both required', () => {
    const t = fixture('hl7.fhir.us.davinci-cdex__payer__Basic-PAS-ClaimResponse-Topic.json');
    expect(t.problems).toEqual([]);
    const cr = (status: string, outcome: string, use = 'preauthorization') => res('ClaimResponse', { status, outcome, use });
    expect(fires(t, 'create', undefined, cr('active', 'complete'))).toBe(true);
    expect(fires(t, 'create', undefined, cr('active', 'partial'))).toBe(true);
    expect(fires(t, 'create', undefined, cr('active', 'queued'))).toBe(false);
    expect(fires(t, 'create', undefined, cr('active', 'complete', 'claim'))).toBe(false);
    expect(fires(t, 'update', cr('draft', 'queued'), cr('active', 'error'))).toBe(true);
    expect(fires(t, 'update', cr('active', 'queued'), cr('active', 'complete'))).toBe(false);
    expect(fires(t, 'delete', cr('active', 'complete'))).toBe(false);
  });

  it('Da Vinci CDex Task: value-set criteria cannot be evaluated, so the trigger never fires', () => {
    const t = fixture('hl7.fhir.us.davinci-cdex__provider__Basic-CDex-PASSubscriptionTopic.json');
    expect(t.problems.join('\n')).toMatch(/queryCriteria\.current.*cannot be evaluated/);
    expect(t.problems.join('\n')).toMatch(/memberOf\(\) needs a terminology service/);
    expect(t.problems.join('\n')).toMatch(/never fires/);
    expect(t.triggers[0].evaluable).toBe(false);
    const task = res('Task', { status: 'completed', intent: 'order' });
    expect(fires(t, 'update', res('Task', { status: 'in-progress', intent: 'order' }), task)).toBe(false);
  });
});

describe('built-in topics', () => {
  it('compile without problems', () => {
    for (const d of BUILTIN_TOPICS) expect(compileTopic(topicFromAnyForm(d.json)).problems, d.source).toEqual([]);
  });

  it('encounter-complete fires on an update to finished from in-progress, not finished → finished', () => {
    expectStateEntry(builtin('encounter-complete'), 'finished', 'in-progress');
  });

  it('admission fires when an Encounter becomes in-progress', () => {
    expectStateEntry(builtin('admission'), 'in-progress', 'planned');
    expectStateEntry(builtin('admission'), 'in-progress', 'arrived');
  });

  it('diagnosticreport-final fires when a DiagnosticReport becomes final', () => {
    const t = builtin('diagnosticreport-final');
    const dr = (status: string) => res('DiagnosticReport', { status, code: { text: 'x' } });
    expect(fires(t, 'create', undefined, dr('final'))).toBe(true);
    expect(fires(t, 'create', undefined, dr('preliminary'))).toBe(false);
    expect(fires(t, 'update', dr('preliminary'), dr('final'))).toBe(true);
    expect(fires(t, 'update', dr('final'), dr('final'))).toBe(false);
    expect(fires(t, 'update', dr('final'), dr('amended'))).toBe(false);
    expect(fires(t, 'delete', dr('final'))).toBe(false);
  });

  it('observation-new fires on create only', () => {
    const t = builtin('observation-new');
    const obs = res('Observation', { status: 'final' });
    expect(fires(t, 'create', undefined, obs)).toBe(true);
    expect(fires(t, 'update', obs, obs)).toBe(false);
    expect(fires(t, 'delete', obs)).toBe(false);
    expect(fires(t, 'create', undefined, enc('finished'))).toBe(false);
  });

  it('patient-changed fires on create and update, not delete', () => {
    const t = builtin('patient-changed');
    const p = res('Patient', { gender: 'male' });
    expect(fires(t, 'create', undefined, p)).toBe(true);
    expect(fires(t, 'update', p, p)).toBe(true);
    expect(fires(t, 'delete', p)).toBe(false);
  });
});

describe('R5 trigger semantics', () => {
  const crit = (qc: NonNullable<ResourceTrigger['queryCriteria']>) => topic([{ queryCriteria: qc }]);

  it('resultForCreate is the value of the previous test on create', () => {
    const passes = crit({ previous: 'status=planned', current: 'status=finished', resultForCreate: 'test-passes', requireBoth: true });
    const fails = crit({ previous: 'status=planned', current: 'status=finished', resultForCreate: 'test-fails', requireBoth: true });
    expect(fires(passes, 'create', undefined, enc('finished'))).toBe(true);
    expect(fires(fails, 'create', undefined, enc('finished'))).toBe(false);
  });

  it('requireBoth=false: either test is enough (so test-passes makes every create fire)', () => {
    const either = crit({ previous: 'status=planned', current: 'status=finished', resultForCreate: 'test-passes' });
    expect(fires(either, 'create', undefined, enc('cancelled'))).toBe(true);
    expect(fires(either, 'update', enc('planned'), enc('cancelled'))).toBe(true);
    expect(fires(either, 'update', enc('arrived'), enc('finished'))).toBe(true);
    expect(fires(either, 'update', enc('arrived'), enc('cancelled'))).toBe(false);
    const failsEither = crit({ previous: 'status=planned', current: 'status=finished', resultForCreate: 'test-fails' });
    expect(fires(failsEither, 'create', undefined, enc('finished'))).toBe(true);
    expect(fires(failsEither, 'create', undefined, enc('cancelled'))).toBe(false);
  });

  it('resultForDelete is the value of the current test on delete', () => {
    const passes = crit({ previous: 'status=finished', current: 'status=planned', resultForDelete: 'test-passes', requireBoth: true });
    const fails = crit({ previous: 'status=finished', current: 'status=planned', resultForDelete: 'test-fails', requireBoth: true });
    expect(fires(passes, 'delete', enc('finished'))).toBe(true);
    expect(fires(passes, 'delete', enc('planned'))).toBe(false);
    expect(fires(fails, 'delete', enc('finished'))).toBe(false);
  });

  it('a test that is not declared takes no part; without resultFor… a missing state takes no part either', () => {
    const currentOnly = crit({ current: 'status=finished', requireBoth: true });
    expect(fires(currentOnly, 'update', enc('finished'), enc('finished'))).toBe(true);
    expect(fires(currentOnly, 'create', undefined, enc('finished'))).toBe(true);
    expect(fires(currentOnly, 'delete', enc('finished'))).toBe(false); // no test left: never on a guess
    const noResult = crit({ previous: 'status:not=finished', current: 'status=finished', requireBoth: true });
    expect(fires(noResult, 'create', undefined, enc('finished'))).toBe(true);
    expect(fires(noResult, 'create', undefined, enc('planned'))).toBe(false);
  });

  it('supportedInteraction: absent = all, otherwise only those listed', () => {
    const all = topic([{}]);
    expect(fires(all, 'create', undefined, enc('planned'))).toBe(true);
    expect(fires(all, 'update', enc('planned'), enc('planned'))).toBe(true);
    expect(fires(all, 'delete', enc('planned'))).toBe(true);
    const del = topic([{ supportedInteraction: ['delete'] }]);
    expect(fires(del, 'delete', enc('planned'))).toBe(true);
    expect(fires(del, 'update', enc('planned'), enc('planned'))).toBe(false);
  });

  it('accepts canonical StructureDefinition URLs and Type? prefixes, rejects other types in criteria', () => {
    const t = topic([{ resource: 'http://hl7.org/fhir/StructureDefinition/Encounter', queryCriteria: { current: 'Encounter?status=finished' } }]);
    expect(t.problems).toEqual([]);
    expect(t.resourceTypes).toEqual(['Encounter']);
    expect(fires(t, 'update', enc('planned'), enc('finished'))).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('planned'))).toBe(false);
    const wrong = topic([{ queryCriteria: { current: 'Patient?gender=male' } }]);
    expect(wrong.problems.join()).toMatch(/names resource type 'Patient'/);
    expect(wrong.triggers[0].evaluable).toBe(false);
    expect(fires(wrong, 'update', enc('planned'), enc('planned'))).toBe(false);
    const unknown = topic([{ resource: 'NotAType' }]);
    expect(unknown.problems.join()).toMatch(/not an R4 resource type/);
    expect(unknown.triggers).toEqual([]);
  });

  it('query criteria use search semantics: several parameters AND, commas OR, modifiers and prefixes', () => {
    const t = topic([{ queryCriteria: { current: 'status=finished,cancelled&class=IMP&length=gt60' } }]);
    const long = { length: { value: 90, unit: 'min', system: 'http://unitsofmeasure.org', code: 'min' } };
    expect(fires(t, 'update', enc('planned'), enc('cancelled', long))).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('finished', { ...long, class: { code: 'AMB' } }))).toBe(false);
    expect(fires(t, 'update', enc('planned'), enc('finished', { length: { value: 30 } }))).toBe(false);
    const missing = topic([{ queryCriteria: { current: 'subject:missing=true' } }]);
    expect(fires(missing, 'create', undefined, enc('planned'))).toBe(true);
    expect(fires(missing, 'create', undefined, enc('planned', { subject: { reference: 'Patient/1' } }))).toBe(false);
  });

  it('several triggers are OR-ed', () => {
    const t = topic([
      { supportedInteraction: ['create'], queryCriteria: { current: 'status=planned' } },
      { resource: 'Patient', supportedInteraction: ['delete'] },
    ]);
    expect(fires(t, 'create', undefined, enc('planned'))).toBe(true);
    expect(fires(t, 'create', undefined, enc('finished'))).toBe(false);
    expect(fires(t, 'delete', res('Patient'))).toBe(true);
    expect(fires(t, 'create', undefined, res('Patient'))).toBe(false);
  });

  it('query and FHIRPath criteria of one trigger are AND-ed', () => {
    const t = topic([{ queryCriteria: { current: 'status=finished' }, fhirPathCriteria: "%current.class.code = 'IMP'" }]);
    expect(fires(t, 'update', enc('planned'), enc('finished'))).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('finished', { class: { code: 'AMB' } }))).toBe(false);
    expect(fires(t, 'update', enc('planned'), enc('planned'))).toBe(false);
  });

  it('an unevaluable criterion is left out when the other one works; FHIRPath errors do not fire', () => {
    const t = topic([{ queryCriteria: { current: 'code:in=http://vs' }, fhirPathCriteria: "%current.status = 'finished'" }]);
    expect(t.problems.join()).toMatch(/cannot be evaluated/);
    expect(t.triggers[0].evaluable).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('finished'))).toBe(true);
    const bad = topic([{ fhirPathCriteria: '%current.status = ' }]);
    expect(bad.problems.join()).toMatch(/cannot be compiled/);
    expect(fires(bad, 'update', enc('planned'), enc('finished'))).toBe(false);
    const multi = topic([{ fhirPathCriteria: '%current.status | %previous.status' }]);
    expect(fires(multi, 'update', enc('planned'), enc('finished'))).toBe(false);
  });

  it('FHIRPath context: $this is the current state (previous on delete); %previous is empty on create', () => {
    const t = topic([{ fhirPathCriteria: "status = 'finished' and %previous.exists().not()" }]);
    expect(fires(t, 'create', undefined, enc('finished'))).toBe(true);
    expect(fires(t, 'update', enc('planned'), enc('finished'))).toBe(false);
    const d = topic([{ fhirPathCriteria: "status = 'finished' and %current.empty()" }]);
    expect(fires(d, 'delete', enc('finished'))).toBe(true);
  });

  it('reads a union of Boolean function results as or, and leaves other unions alone', () => {
    expect(rewriteBooleanUnion("(%previous.empty() | (%previous.status != 'x')) and %current.status in ('a' | 'b')")).toBe(
      "(%previous.empty() or (%previous.status != 'x')) and %current.status in ('a' | 'b')",
    );
    expect(rewriteBooleanUnion("%current.name = 'a.empty() | b'")).toBe("%current.name = 'a.empty() | b'");
  });
});

describe('notification shape', () => {
  const focus = enc('finished', {
    id: 'e1',
    subject: { reference: 'Patient/p1' },
    participant: [{ individual: { reference: 'Practitioner/dr1' } }, { individual: { reference: 'RelatedPerson/rp1' } }],
    serviceProvider: { reference: 'http://other.example/Organization/o1' },
    account: [{ reference: 'Account/a1' }],
    location: [{ location: { reference: 'Location/l1' } }],
  });

  it('include: the focus references named by the include directives (with their iterate directives)', () => {
    const t = fixture('subscriptions__r4__basic-subscriptiontopic-encounter-complete.json');
    const ctx = additionalContext(t, focus);
    // Encounter:practitioner only follows participants that are Practitioners; the external
    // serviceProvider cannot be read here
    expect(ctx.include.sort()).toEqual(['Account/a1', 'Location/l1', 'Patient/p1', 'Practitioner/dr1']);
    expect(ctx.iterate).toEqual([{ sourceType: 'Patient', param: 'link', iterate: true }]);
    expect(additionalContext(t, res('Patient'))).toEqual({ include: [], iterate: [] });
  });

  it('include with a target type and *', () => {
    const typed = topic([{}], { notificationShape: [{ resource: 'Encounter', include: ['Encounter:participant:Practitioner'], revInclude: [], relatedQuery: [] }] });
    expect(additionalContext(typed, focus).include).toEqual(['Practitioner/dr1']);
    const all = topic([{}], { notificationShape: [{ resource: 'Encounter', include: ['*'], revInclude: [], relatedQuery: [] }] });
    expect(additionalContext(all, focus).include.sort()).toEqual(['Account/a1', 'Location/l1', 'Patient/p1', 'Practitioner/dr1', 'RelatedPerson/rp1']);
    const bad = topic([{}], { notificationShape: [{ resource: 'Encounter', include: ['Encounter:status', 'Patient:link'], revInclude: ['Nope:x'], relatedQuery: [] }] });
    expect(bad.problems).toHaveLength(3);
  });

  it('revInclude: one search per directive whose parameter can point at the focus type', () => {
    const t = topic([{}], {
      notificationShape: [{ resource: 'Encounter', include: [], revInclude: ['Observation:encounter', 'Encounter:subject', 'Condition:*'], relatedQuery: [] }],
    });
    const qs = revIncludeQueries(t, focus);
    expect(qs.map((q) => `${q.resourceType}?${q.filters.map((f) => f.code).join('&')}`)).toEqual(['Observation?encounter', 'Condition?encounter', 'Condition?evidence-detail']);
    expect(qs[0].filters[0].values).toEqual([{ kind: 'keys', keys: ['>Encounter/e1'] }]);
    // the eCR topic's Encounter:subject revInclude cannot point at an Encounter
    expect(revIncludeQueries(fixture('subscriptions__r4__basic-subscriptiontopic-encounter-complete.json'), focus)).toEqual([]);
  });
});
