/**
 * The topics shipped with Clarion: they parse, and everything they name exists in R4 (Clarion stores
 * R4 resources): resource types, filter parameters and their SearchParameter canonicals, comparators,
 * include directives, and the parameters of their query criteria.
 */
import { describe, expect, it } from 'vitest';
import type { SearchParameter } from 'fhir/r4.js';
import { isR4ResourceType, loadDefinitionBundle } from '../../src/fhir/definitions.js';
import { validateR4Resource } from '../../src/fhir/validation.js';
import { BUILTIN_TOPICS } from '../../src/topics/builtin/index.js';
import type { SubscriptionTopic } from '../../src/topics/topic-model.js';
import { topicToBasic } from '../../src/versions/r4/topic-to-basic.js';
import { topicFromR5 } from '../../src/versions/r5/topic-from-r5.js';
import { topicWireForm } from '../../src/versions/topic-format.js';

const params = loadDefinitionBundle<{ entry: { resource: SearchParameter }[] }>('search-parameters.json').entry.map((e) => e.resource);

/** The R4 SearchParameter `code` applicable to `type` (own base, or Resource/DomainResource). */
function searchParam(type: string, code: string): SearchParameter | undefined {
  return params.find((p) => p.code === code && p.base.some((b) => b === type || b === 'Resource' || b === 'DomainResource'));
}

const topics: [string, SubscriptionTopic][] = BUILTIN_TOPICS.map((d) => [d.source, topicFromR5(d.json)]);

describe('built-in topics', () => {
  it('are R5 SubscriptionTopic JSON and include the required canonicals', () => {
    for (const d of BUILTIN_TOPICS) expect(topicWireForm(d.json), d.source).toBe('r5');
    expect(topics.map(([, t]) => t.url)).toEqual([
      'http://example.org/FHIR/SubscriptionTopic/encounter-complete',
      'http://hl7.org/SubscriptionTopic/admission',
      'https://clarion.dev/fhir/SubscriptionTopic/observation-new',
      'https://clarion.dev/fhir/SubscriptionTopic/diagnosticreport-final',
      'https://clarion.dev/fhir/SubscriptionTopic/patient-changed',
    ]);
    expect(topics.every(([, t]) => t.status === 'active' && t.version === '1.0.0')).toBe(true);
  });

  it('admission fires when an Encounter becomes in-progress and can be filtered by patient', () => {
    const admission = topics.find(([, t]) => t.url === 'http://hl7.org/SubscriptionTopic/admission')![1];
    expect(admission.resourceTriggers).toEqual([
      expect.objectContaining({
        resource: 'Encounter',
        supportedInteraction: ['create', 'update'],
        queryCriteria: { previous: 'status:not=in-progress', resultForCreate: 'test-passes', current: 'status=in-progress', resultForDelete: 'test-fails', requireBoth: true },
      }),
    ]);
    expect(admission.canFilterBy.map((f) => f.filterParameter)).toContain('patient');
  });

  it.each(topics)('%s names R4 resource types', (_s, t) => {
    for (const x of [...t.resourceTriggers, ...t.notificationShape, ...t.canFilterBy]) expect(isR4ResourceType(x.resource!)).toBe(true);
  });

  it.each(topics)('%s filters on real R4 search parameters, with their canonical and comparators', (_s, t) => {
    expect(t.canFilterBy.length).toBeGreaterThanOrEqual(2);
    for (const f of t.canFilterBy) {
      const sp = searchParam(f.resource!, f.filterParameter);
      expect(sp, `${f.resource}.${f.filterParameter}`).toBeDefined();
      expect(f.filterDefinition).toBe(sp!.url);
      for (const c of f.comparator) expect(sp!.comparator ?? []).toContain(c);
      if (f.modifier.length > 0) expect(sp!.type).toBe('token');
    }
  });

  it.each(topics)('%s includes along real R4 reference parameters, and its criteria use real parameters', (_s, t) => {
    for (const s of t.notificationShape) {
      for (const inc of s.include) {
        const [type, code] = inc.split(':');
        expect(type).toBe(s.resource);
        expect(searchParam(type, code)?.type, inc).toBe('reference');
      }
    }
    for (const trig of t.resourceTriggers) {
      for (const q of [trig.queryCriteria?.previous, trig.queryCriteria?.current]) {
        if (q === undefined) continue;
        for (const part of q.split('&')) expect(searchParam(trig.resource, part.split(/[:=]/)[0]), q).toBeDefined();
      }
    }
  });

  it.each(topics)('%s can be served as a valid R4 Basic', (_s, t) => {
    expect(() => validateR4Resource(topicToBasic(t), 'Basic')).not.toThrow();
  });
});
