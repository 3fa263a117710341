/** Malformed topics are rejected with FhirErrors naming the element (wire path) and the reason, all problems at once. */
import { describe, expect, it } from 'vitest';
import { FhirError } from '../../src/fhir/errors.js';
import { topicFromBasic } from '../../src/versions/r4/topic-from-basic.js';
import { topicToBasic } from '../../src/versions/r4/topic-to-basic.js';
import { topicFromR4B } from '../../src/versions/r4b/topic-from-r4b.js';
import { topicFromR5 } from '../../src/versions/r5/topic-from-r5.js';
import { topicFromAnyForm } from '../../src/versions/topic-format.js';

const R5 = () => ({
  resourceType: 'SubscriptionTopic',
  url: 'https://t.test/topic',
  status: 'active',
  resourceTrigger: [{ resource: 'Encounter', supportedInteraction: ['create'], queryCriteria: { current: 'status=finished', resultForCreate: 'test-passes' } }],
  canFilterBy: [{ resource: 'Encounter', filterParameter: 'patient', comparator: ['eq'], modifier: ['not'] }],
  notificationShape: [{ resource: 'Encounter', include: ['Encounter:patient'] }],
});

/** The error thrown by `fn`, with its issues as [expression, diagnostics]. */
function failure(fn: () => unknown): { code: string; status: number; issues: [string, string][] } {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof FhirError)) throw err;
    return { code: err.code, status: err.status, issues: err.issues.map((i) => [(i.expression ?? [])[0] ?? '', i.diagnostics ?? '']) };
  }
  throw new Error('expected a FhirError');
}

describe('not a topic', () => {
  it.each([
    ['a string', 'x', 'expected a JSON object'],
    ['a Patient', { resourceType: 'Patient' }, 'expected SubscriptionTopic or Basic'],
  ])('%s', (_n, json, reason) => {
    const f = failure(() => topicFromAnyForm(json));
    expect([f.code, f.status]).toEqual(['CLARION_NOT_A_TOPIC', 400]);
    expect(f.issues[0][1]).toContain(reason);
  });

  it('a Basic with another code', () => {
    const f = failure(() => topicFromBasic({ resourceType: 'Basic', code: { coding: [{ system: 'http://example.org', code: 'x' }] } }));
    expect(f.code).toBe('CLARION_NOT_A_TOPIC');
    expect(f.issues[0][0]).toBe('Basic.code');
  });
});

describe('R5 / R4B topics', () => {
  it('the valid base case parses', () => expect(topicFromR5(R5()).canFilterBy[0]).toMatchObject({ comparator: ['eq'], modifier: ['not'] }));

  it('reports every problem at its JSON path', () => {
    const t: any = R5();
    delete t.status;
    t.url = 'relative/topic';
    t.resourceTrigger[0].resource = 'encounter';
    t.resourceTrigger[0].supportedInteraction = ['create', 'read'];
    t.resourceTrigger[0].queryCriteria.resultForCreate = 'yes';
    t.resourceTrigger[0].queryCriteria.requireBoth = 'true';
    t.canFilterBy[0].filterParameter = 'status:not';
    t.canFilterBy[0].comparator = ['gt', 'bigger'];
    t.notificationShape[0].include = 'Encounter:patient';
    const f = failure(() => topicFromR5(t));
    expect([f.code, f.status]).toEqual(['CLARION_INVALID_TOPIC', 400]);
    expect(f.issues.map((i) => i[0])).toEqual([
      'SubscriptionTopic.url',
      'SubscriptionTopic.status',
      'SubscriptionTopic.resourceTrigger[0].resource',
      'SubscriptionTopic.resourceTrigger[0].supportedInteraction[1]',
      'SubscriptionTopic.resourceTrigger[0].queryCriteria.resultForCreate',
      'SubscriptionTopic.resourceTrigger[0].queryCriteria.requireBoth',
      'SubscriptionTopic.canFilterBy[0].filterParameter',
      'SubscriptionTopic.canFilterBy[0].comparator[1]',
      'SubscriptionTopic.notificationShape[0].include',
    ]);
    const text = f.issues.map((i) => i[1]).join('\n');
    expect(text).toContain("Topic relative/topic is invalid: SubscriptionTopic.url: 'relative/topic' must be an absolute URI");
    expect(text).toContain("'read' is not one of create, update, delete");
    expect(text).toContain("'encounter' is not a resource type name (Encounter) or http://hl7.org/fhir/StructureDefinition/<type>");
    expect(text).toContain('must be a bare parameter name');
  });

  it('a trigger without resource and a filter without filterParameter', () => {
    const t: any = R5();
    delete t.resourceTrigger[0].resource;
    delete t.canFilterBy[0].filterParameter;
    expect(failure(() => topicFromR5(t)).issues).toEqual([
      ['SubscriptionTopic.resourceTrigger[0].resource', 'Topic https://t.test/topic is invalid: SubscriptionTopic.resourceTrigger[0].resource: is required'],
      ['SubscriptionTopic.canFilterBy[0].filterParameter', 'Topic https://t.test/topic is invalid: SubscriptionTopic.canFilterBy[0].filterParameter: is required'],
    ]);
  });

  it('R4B: modifier codes outside subscription-search-modifier, and the R5-only comparator element', () => {
    const t: any = R5();
    t.canFilterBy[0].modifier = ['=', 'gt', 'missing'];
    const f = failure(() => topicFromR4B(t));
    expect(f.issues.map((i) => i[0])).toEqual(['SubscriptionTopic.canFilterBy[0].modifier[2]', 'SubscriptionTopic.canFilterBy[0].comparator']);
    delete t.canFilterBy[0].comparator;
    t.canFilterBy[0].modifier = ['=', 'gt', 'in'];
    expect(topicFromR4B(t).canFilterBy[0]).toMatchObject({ comparator: ['gt'], modifier: ['in'] });
  });
});

describe('R4 Basic topics', () => {
  const basic = () => JSON.parse(JSON.stringify(topicToBasic(topicFromR5(R5()))));
  // extension[0] url, [1] resourceTrigger, [2] canFilterBy, [3] notificationShape

  it('the valid base case parses', () => expect(topicFromBasic(basic()).url).toBe('https://t.test/topic'));

  it('names the element behind each extension path', () => {
    const b = basic();
    b.extension[0] = { url: b.extension[0].url, valueString: 'https://t.test/topic' };
    b.extension[1].extension[0].valueUri = 'http://example.org/StructureDefinition/MyEncounter';
    b.extension[1].extension.push({ url: 'foo', valueString: 'x' });
    b.extension[1].extension[2].extension.push({ url: 'requireBoth', valueString: 'true' });
    b.extension[2].extension.push({ url: 'comparator', valueCode: 'bigger' });
    b.modifierExtension.push({ url: 'http://example.org/do-not-ignore', valueBoolean: true });
    const f = failure(() => topicFromBasic(b));
    expect(f.code).toBe('CLARION_INVALID_TOPIC');
    expect(f.issues.map((i) => i[0]).sort()).toEqual([
      'Basic.extension[0]',
      'Basic.extension[1].extension[0]',
      'Basic.extension[1].extension[2].extension[2]',
      'Basic.extension[1].extension[3]',
      'Basic.extension[2].extension[4]',
      'Basic.modifierExtension[1]',
    ]);
    const text = f.issues.map((i) => i[1]).join('\n');
    expect(text).toContain('Basic.extension[0] (url): has valueString; expected valueUri or valueCanonical or valueUrl');
    expect(text).toContain('(resourceTrigger.resource)');
    expect(text).toContain("Basic.extension[1].extension[3] (resourceTrigger): unknown sub-extension 'foo'");
    expect(text).toContain('(resourceTrigger.queryCriteria.requireBoth): has valueString; expected valueBoolean');
    expect(text).toContain("(canFilterBy.comparator): 'bigger' is not one of eq, ne, gt, lt, ge, le, sa, eb, ap");
    expect(text).toContain('unknown modifier extension "http://example.org/do-not-ignore"');
  });

  it('missing url and status, repeated title', () => {
    const b = basic();
    b.extension.shift();
    b.modifierExtension = [];
    b.extension.push({ url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.title', valueString: 'a' });
    b.extension.push({ url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.title', valueString: 'b' });
    const f = failure(() => topicFromBasic(b));
    expect(f.issues.map((i) => i[1].replace(/^Topic .* is invalid: /, ''))).toEqual([
      'Basic.extension: has no SubscriptionTopic.url extension (required)',
      'Basic.modifierExtension: has no SubscriptionTopic.status extension (required)',
      'Basic.extension[4] (title): must not repeat',
    ]);
  });

  it('ignores extensions it does not know (jurisdiction, foreign extensions)', () => {
    const b = basic();
    b.extension.push({ url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-SubscriptionTopic.jurisdiction', valueCodeableConcept: { text: 'US' } });
    b.extension.push({ url: 'http://example.org/local', valueString: 'x' });
    expect(topicFromBasic(b)).toEqual(topicFromBasic(basic()));
  });
});
