import { describe, expect, it } from 'vitest';
import { FhirError } from '../../../src/fhir/errors.js';
import { parseSearchRequest } from '../../../src/fhir/search/parse.js';
import { pairs } from './search-helpers.js';

const lenient = (type: string, q: string) => parseSearchRequest(type, pairs(q), { strict: false });
const strict = (type: string, q: string) => parseSearchRequest(type, pairs(q), { strict: true });

function errorOf(fn: () => unknown): FhirError {
  try {
    fn();
  } catch (e) {
    if (e instanceof FhirError) return e;
    throw e;
  }
  throw new Error('expected a FhirError');
}

describe('parseSearchRequest', () => {
  it('parses filters in order with AND/OR structure', () => {
    const s = strict('Patient', 'name=a,b&name=c&gender=male');
    expect(s.filters.map((f) => [f.code, f.values.length])).toEqual([['name', 2], ['name', 1], ['gender', 1]]);
    expect(s.count).toBe(20);
    expect(s.total).toBe('none');
  });

  it('splits on unescaped separators only', () => {
    const s = strict('Patient', 'identifier=a\\|b|c\\,d,e');
    expect(s.filters[0].values).toEqual([{ kind: 'keys', keys: ['=a\\|b|c,d'] }, { kind: 'keys', keys: ['=e'] }]);
  });

  it('reports unknown parameters leniently and rejects them strictly', () => {
    const s = lenient('Patient', 'foo=bar&name=x&_text=abc');
    expect(s.ignored.map((i) => i.name)).toEqual(['foo', '_text']);
    expect(s.filters).toHaveLength(1);
    expect(errorOf(() => strict('Patient', 'foo=bar')).code).toBe('CLARION_UNKNOWN_SEARCH_PARAMETER');
  });

  it('applies _count limits and parses result parameters', () => {
    expect(parseSearchRequest('Patient', pairs('_count=5000'), { strict: true, maxCount: 100 }).count).toBe(100);
    const s = strict('Patient', '_count=3&_sort=-birthdate,_id&_total=accurate&_summary=true&_elements=name,gender&_include=Patient:organization&_revinclude:iterate=Observation:subject:Patient');
    expect(s.count).toBe(3);
    expect(s.sort).toEqual([{ code: 'birthdate', descending: true }, { code: '_id', descending: false }]);
    expect(s.total).toBe('accurate');
    expect(s.summary).toBe('true');
    expect(s.elements).toEqual(['name', 'gender']);
    expect(s.include).toEqual([{ sourceType: 'Patient', param: 'organization' }]);
    expect(s.revinclude).toEqual([{ sourceType: 'Observation', param: 'subject', targetType: 'Patient', iterate: true }]);
    expect(strict('Patient', '_summary=count').total).toBe('accurate');
  });

  const bad: [string, string, string, RegExp][] = [
    ['Patient', 'name:text=x', 'CLARION_UNSUPPORTED_MODIFIER', /':text' is not supported on 'name:text'; accepted: missing, exact, contains/],
    ['Patient', 'gender:in=http://vs', 'CLARION_UNSUPPORTED_MODIFIER', /accepted: missing, not, text, of-type/],
    ['Observation', 'subject:Medication=1', 'CLARION_UNSUPPORTED_MODIFIER', /target type/],
    ['Patient', 'birthdate=xx2020', 'CLARION_UNSUPPORTED_PREFIX', /'xx'/],
    ['Patient', 'birthdate=2020-13', 'CLARION_INVALID_SEARCH_VALUE', /'2020-13' of search parameter 'birthdate'/],
    ['Patient', 'birthdate=2021-02-30', 'CLARION_INVALID_SEARCH_VALUE', /birthdate/],
    ['Patient', 'birthdate=yesterday', 'CLARION_INVALID_SEARCH_VALUE', /birthdate/],
    ['RiskAssessment', 'probability=gt1.5.3', 'CLARION_INVALID_SEARCH_VALUE', /decimal/],
    ['Observation', 'value-quantity=abc|x|y', 'CLARION_INVALID_SEARCH_VALUE', /value-quantity/],
    ['Observation', 'value-quantity=1|a', 'CLARION_INVALID_SEARCH_VALUE', /number\|system\|code/],
    ['Patient', 'gender:missing=maybe', 'CLARION_INVALID_SEARCH_VALUE', /true or false/],
    ['Patient', 'identifier=a|b|c', 'CLARION_INVALID_SEARCH_VALUE', /system\|code/],
    ['Observation', 'component-code-value-quantity=http://loinc.org|8480-6', 'CLARION_INVALID_SEARCH_VALUE', /2 components/],
    ['Patient', '_count=-1', 'CLARION_INVALID_SEARCH_VALUE', /non-negative integer/],
    ['Patient', '_count=ten', 'CLARION_INVALID_SEARCH_VALUE', /_count/],
    ['Patient', '_sort=foo', 'CLARION_INVALID_SORT', /'foo' is not a search parameter/],
    ['Observation', '_sort=component-code-value-quantity', 'CLARION_INVALID_SORT', /composite/],
    ['Patient', '_total=some', 'CLARION_INVALID_SEARCH_VALUE', /none, estimate, accurate/],
    ['Patient', '_summary=yes', 'CLARION_INVALID_SEARCH_VALUE', /_summary/],
    ['Patient', '_include=Patient:name', 'CLARION_INVALID_INCLUDE', /not a reference search parameter/],
    ['Patient', '_include=Nope:subject', 'CLARION_INVALID_INCLUDE', /not an R4 resource type/],
    ['Patient', '_revinclude=*', 'CLARION_INVALID_INCLUDE', /not supported/],
    ['Patient', '_include:deep=Patient:organization', 'CLARION_UNSUPPORTED_MODIFIER', /iterate/],
    ['Patient', 'organization=Nope/1', 'CLARION_INVALID_SEARCH_VALUE', /R4 resource type/],
  ];
  for (const [type, q, code, msg] of bad) {
    it(`rejects ${type}?${q} with ${code}`, () => {
      for (const s of [true, false]) {
        const e = errorOf(() => parseSearchRequest(type, pairs(q), { strict: s }));
        expect(e.status).toBe(400);
        expect(e.code).toBe(code);
        expect(e.message).toMatch(msg);
      }
    });
  }

  it('never throws anything but a 4xx FhirError for arbitrary input', () => {
    const names = ['name', 'name:exact', 'birthdate', 'gender:not', 'organization', 'organization:Organization', 'general-practitioner.name', '_id', '_lastUpdated', '_count', '_sort', '_include', '_revinclude', 'identifier:of-type', 'phone', 'link:missing', '_has:Observation:subject:code', 'x.y.z', ':', '.', 'name.'];
    const values = ['', ',', '\\', '$', '|', '||', 'ge', 'eq2020-01-01T25:00', 'gt-1e999', '1e9999', 'a\\', '\u0000', 'Patient/', '/1', '%', 'http://x|', '2020-02-29', '*', 'Patient:*', 'Patient:organization:Nope', 'x'.repeat(3000), 'true'];
    let n = 0;
    for (const name of names) {
      for (const value of values) {
        try {
          parseSearchRequest('Patient', [[name, value]], { strict: n++ % 2 === 0 });
        } catch (e) {
          expect(e).toBeInstanceOf(FhirError);
          expect((e as FhirError).status).toBeGreaterThanOrEqual(400);
          expect((e as FhirError).status).toBeLessThan(500);
        }
      }
    }
  });
});
