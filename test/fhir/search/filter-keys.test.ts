/**
 * filterTokenKeys: for every exact-match filter, a resource's tokens contain one of the filter's keys
 * exactly when matchesSearch says the filter matches; other filters have no keys.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import { extractSearchIndex } from '../../../src/fhir/search/extract.js';
import { filterTokenKeys } from '../../../src/fhir/search/filter-keys.js';
import { matchesSearch } from '../../../src/fhir/search/match.js';
import { parseSearchRequest } from '../../../src/fhir/search/parse.js';

const resources: Resource[] = [
  {
    resourceType: 'Observation',
    id: 'o1',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic' }], text: 'BP' },
    subject: { reference: 'Patient/123' },
    encounter: { reference: 'Encounter/e1/_history/2' },
    identifier: [{ system: 'urn:sys', value: 'a|b', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] } }],
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'laboratory' }] }],
    performer: [{ identifier: { system: 'urn:npi', value: '999' } }],
  },
  { resourceType: 'Observation', id: 'o2', status: 'preliminary', code: { coding: [{ code: '8480-6' }] }, subject: { reference: 'Group/g1' } },
  { resourceType: 'Observation', id: 'o3', status: 'final', code: { text: 'no codes' }, subject: { reference: 'http://other.example/fhir/Patient/123' } },
  { resourceType: 'Observation', id: 'o4', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '1234-5' }] }, subject: { reference: '123', type: 'Patient' } },
] as unknown as Resource[];

const exact = [
  'status=final',
  'status=final,amended',
  'code=8480-6',
  'code=http://loinc.org|8480-6',
  'code=|8480-6',
  'code=http://loinc.org|',
  'code=http://loinc.org|1234-5,http://snomed.info/sct|1',
  'subject=Patient/123',
  'subject=123',
  'subject:Patient=123',
  'subject:Group=Patient/123',
  'subject=http://other.example/fhir/Patient/123',
  'patient=Patient/123',
  'encounter=Encounter/e1',
  'encounter=Encounter/e1/_history/2',
  'identifier=urn:sys|a\\|b',
  'identifier=a\\|b',
  'identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|MR|a\\|b',
  'performer:identifier=urn:npi|999',
  '_id=o1',
  '_id=o2,o3',
  'category=laboratory',
];
const notExact = ['status:not=final', 'status:missing=true', 'code:text=systolic', 'subject:missing=false', 'value-quantity=gt5', 'date=ge2020', 'code-value-quantity=8480-6$gt5', 'subject.name=x'];

function parse(q: string) {
  const eq = q.indexOf('=');
  return parseSearchRequest('Observation', [[q.slice(0, eq), q.slice(eq + 1)]], { strict: true }).filters[0];
}

describe('filterTokenKeys', () => {
  for (const q of exact) {
    it(`${q}: key in tokens ⇔ matchesSearch`, () => {
      const f = parse(q);
      const keys = filterTokenKeys('Observation', f);
      expect(keys).toBeDefined();
      let matched = 0;
      for (const r of resources) {
        const index = extractSearchIndex(r);
        const byKey = keys!.some((k) => index.tokens.includes(k));
        expect(byKey, `${q} on ${r.id}`).toBe(matchesSearch(r, [f], { index }));
        if (byKey) matched++;
      }
      if (q !== 'subject:Group=Patient/123' && q !== 'code=http://loinc.org|1234-5,http://snomed.info/sct|1' && q !== 'code=|8480-6') expect(matched, q).toBeGreaterThan(0);
    });
  }

  it('gives the exact index key format (e.g. patient>Patient/123)', () => {
    expect(filterTokenKeys('Observation', parse('patient=Patient/123'))).toEqual(['patient>Patient/123']);
    expect(filterTokenKeys('Observation', parse('code=http://loinc.org|8480-6'))).toEqual(['code=http://loinc.org|8480-6']);
    expect(filterTokenKeys('Observation', parse('_id=o2,o3'))).toEqual(['_id=o2', '_id=o3']);
    expect(filterTokenKeys('Observation', parse('subject:Group=Patient/123'))).toEqual([]);
  });

  for (const q of notExact) {
    it(`${q}: not an exact-match filter`, () => {
      expect(filterTokenKeys('Observation', parse(q))).toBeUndefined();
    });
  }
});
