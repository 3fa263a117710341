/**
 * Every published topic in the shared fixtures (R4 Basic with cross-version extensions, R4B and R5
 * SubscriptionTopic) parses into the neutral model, and converts back: model → R4 Basic → model,
 * model → R5 → model, model → R4B → model are lossless (except where a form cannot say something).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateR4Resource } from '../../src/fhir/validation.js';
import type { SubscriptionTopic } from '../../src/topics/topic-model.js';
import { topicFromBasic } from '../../src/versions/r4/topic-from-basic.js';
import { topicToBasic } from '../../src/versions/r4/topic-to-basic.js';
import { topicFromR4B } from '../../src/versions/r4b/topic-from-r4b.js';
import { topicToR4B } from '../../src/versions/r4b/topic-to-r4b.js';
import { topicFromR5 } from '../../src/versions/r5/topic-from-r5.js';
import { topicToR5 } from '../../src/versions/r5/topic-to-r5.js';
import { topicFromAnyForm, topicWireForm, type TopicWireForm } from '../../src/versions/topic-format.js';
import { FIXTURES_DIR, IG_DIR } from '../support/ig-validator.js';

const TOPICS_DIR = join(FIXTURES_DIR, 'topics');
const FILES: [string, string][] = [
  ...readdirSync(TOPICS_DIR).filter((f) => f.endsWith('.json')).map((f): [string, string] => [f, join(TOPICS_DIR, f)]),
  ['v1.2.0-ballot/Basic-r4-encounter-complete.json', join(IG_DIR, 'v1.2.0-ballot', 'Basic-r4-encounter-complete.json')],
  ['v1.2.0-ballot/SubscriptionTopic-r4b-encounter-complete.json', join(IG_DIR, 'v1.2.0-ballot', 'SubscriptionTopic-r4b-encounter-complete.json')],
];
const read = (path: string): any => JSON.parse(readFileSync(path, 'utf8'));

/** The wire form each fixture is in, from its name (R4B topics that use no R4B-only code read as R5 too). */
function expectedForm(name: string, json: any): TopicWireForm[] {
  if (json.resourceType === 'Basic') return ['r4-basic'];
  return /r4b/i.test(name) ? ['r4b', 'r5'] : ['r5'];
}

describe('fixture topics parse', () => {
  it('there are 16 fixture topics', () => expect(FILES).toHaveLength(16));

  it.each(FILES)('%s', (name, path) => {
    const json = read(path);
    expect(expectedForm(name, json)).toContain(topicWireForm(json));
    const topic = topicFromAnyForm(json);
    expect(topic.url).toMatch(/^http/);
    expect(topic.resourceTriggers.length).toBeGreaterThan(0);
    for (const t of topic.resourceTriggers) expect(t.resource).toMatch(/^[A-Z][A-Za-z]+$/);
    for (const s of topic.notificationShape) expect(s.resource).toMatch(/^[A-Z][A-Za-z]+$/);
  });
});

describe('the encounter-complete topic reads the same in every wire form', () => {
  const basic = topicFromBasic(read(join(TOPICS_DIR, 'subscriptions__r4__basic-subscriptiontopic-encounter-complete.json')));
  const r4b = topicFromR4B(read(join(TOPICS_DIR, 'subscriptions__r4b__subscriptiontopic-encounter-complete.json')));
  const r5 = topicFromR5(read(join(TOPICS_DIR, 'subscriptions__r5__subscriptiontopic-encounter-complete.json')));

  it('has the expected model', () => {
    expect(basic).toEqual({
      url: 'http://example.org/FHIR/SubscriptionTopic/encounter-complete',
      version: '1.0.0-fhir.r4',
      name: 'Example Encounter Completed Topic',
      title: 'encounter-complete',
      status: 'draft',
      date: '2019-01-01',
      description: 'Example topic for completed encounters',
      derivedFrom: [],
      resourceTriggers: [
        {
          description: 'An Encounter has been completed',
          resource: 'Encounter',
          supportedInteraction: ['create', 'update'],
          queryCriteria: { previous: 'status:not=finished', resultForCreate: 'test-passes', current: 'status=finished', resultForDelete: 'test-fails', requireBoth: true },
          fhirPathCriteria: "(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')",
        },
      ],
      eventTriggers: [],
      canFilterBy: [
        { description: 'Filter based on the subject of an encounter.', resource: 'Encounter', filterParameter: 'subject', comparator: [], modifier: [] },
        { description: 'Filter based on the group membership of the subject of an encounter.', resource: 'Encounter', filterParameter: '_in', comparator: [], modifier: [] },
        { description: 'Filter based on the length of an encounter.', resource: 'Encounter', filterParameter: 'length', comparator: ['gt', 'lt', 'ge', 'le'], modifier: [] },
      ],
      notificationShape: [
        {
          resource: 'Encounter',
          include: ['Encounter:patient&iterate=Patient.link', 'Encounter:practitioner', 'Encounter:service-provider', 'Encounter:account', 'Encounter:diagnosis', 'Encounter:observation', 'Encounter:location'],
          revInclude: ['Encounter:subject'],
          relatedQuery: [],
        },
      ],
    } satisfies SubscriptionTopic);
  });

  it('R4B splits its modifier list into R5 comparators (the model of R4 Basic and R4B agree)', () => {
    expect(r4b.canFilterBy).toEqual(basic.canFilterBy);
    expect(r4b.resourceTriggers).toEqual(basic.resourceTriggers);
  });

  it('R5 has the same structure (with R5 status codes)', () => {
    expect(r5.canFilterBy.map((f) => [f.filterParameter, f.comparator])).toEqual([['patient', []], ['_in', []], ['length', ['gt', 'lt', 'ge', 'le']]]);
    expect(r5.resourceTriggers[0].queryCriteria?.current).toBe('status=completed');
  });
});

describe('the IG 1.2.0-ballot Basic topic (4.3 and 5.0 prefixes mixed, related-query)', () => {
  const t = topicFromBasic(read(join(IG_DIR, 'v1.2.0-ballot', 'Basic-r4-encounter-complete.json')));
  it('reads triggers under the 4.3 prefix and the related query', () => {
    expect(t.url).toBe('http://hl7.org/fhir/uv/subscriptions-backport/SubscriptionTopic/r4-encounter-complete');
    expect(t.resourceTriggers).toHaveLength(1);
    expect(t.canFilterBy.map((f) => f.filterParameter)).toEqual(['subject', '_in']);
    expect(t.notificationShape[0].relatedQuery).toEqual([
      { queryType: { code: 'prescribed', system: 'http://example.org/query-types', display: 'Prescribed medications' }, query: 'http://example.org/fhir/Encounter/[id]/$prescribed-medications' },
    ]);
  });
});

describe('round trips', () => {
  it.each(FILES)('%s: model → R4 Basic → model, and the Basic is a valid R4 resource', (_name, path) => {
    const topic = topicFromAnyForm(read(path));
    const basic = topicToBasic(topic);
    expect(() => validateR4Resource(basic, 'Basic')).not.toThrow();
    expect(topicFromBasic(JSON.parse(JSON.stringify(basic)))).toEqual(topic);
  });

  it.each(FILES)('%s: model → R5 → model (R5 has no relatedQuery)', (_name, path) => {
    const topic = topicFromAnyForm(read(path));
    const expected = { ...topic, notificationShape: topic.notificationShape.map((s) => ({ ...s, relatedQuery: [] })) };
    expect(topicFromR5(topicToR5(topic))).toEqual(expected);
  });

  it.each(FILES)('%s: model → R4B → model (R4B has no name; modifiers outside its code system are dropped)', (_name, path) => {
    const topic = topicFromAnyForm(read(path));
    const r4b = topicToR4B(topic) as any;
    expect(r4b.name).toBeUndefined();
    const back = topicFromR4B(r4b);
    expect(back.canFilterBy.map((f) => f.comparator)).toEqual(topic.canFilterBy.map((f) => f.comparator));
    expect(back.resourceTriggers).toEqual(topic.resourceTriggers);
  });

  it('the R4 Basic Clarion writes is the published one (same extensions, same values)', () => {
    const published = read(join(TOPICS_DIR, 'subscriptions__r4__basic-subscriptiontopic-encounter-complete.json'));
    expect(topicToBasic(topicFromBasic(published), { id: published.id })).toEqual(published);
  });
});
