import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FhirError } from '../../src/fhir/errors.js';
import { validateR4Resource } from '../../src/fhir/validation.js';
import { EXAMPLES_DIR as examplesDir, exampleFiles, KNOWN_INVALID } from '../support/r4-examples.js';

// The known-invalid examples (with the expression of the first issue) are shared with the REST
// acceptance test (test/server/r4-examples.test.ts).

/** Validates and returns the error (failing the test if there is none). */
function reject(resource: unknown, expectedType?: string): FhirError {
  try {
    validateR4Resource(resource, expectedType);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error(`expected ${JSON.stringify(resource)} to be rejected`);
}

function expressions(err: FhirError): string[] {
  return err.issues.flatMap((i) => i.expression ?? []);
}

describe('R4 examples (hl7.fhir.r4.examples)', () => {
  it('accepts every valid example and rejects only the known-invalid ones, for the known reason', { timeout: 600_000 }, () => {
    const files = exampleFiles();
    expect(files.length).toBeGreaterThan(5000);
    const rejected: { file: string; issues: string[]; expressions: string[] }[] = [];
    for (const file of files) {
      const resource = JSON.parse(readFileSync(join(examplesDir, file), 'utf8'));
      try {
        validateR4Resource(resource);
      } catch (err) {
        if (!(err instanceof FhirError)) throw err;
        rejected.push({ file, issues: err.issues.map((i) => i.diagnostics ?? ''), expressions: expressions(err) });
      }
    }
    console.info(
      `${files.length} examples, ${rejected.length} rejected:\n` +
        rejected.map((r) => `  ${r.file}: ${r.issues.length} issue(s), first: ${r.issues[0]}`).join('\n'),
    );
    const unexpected = rejected.filter((r) => !(r.file in KNOWN_INVALID));
    expect(unexpected).toEqual([]);
    for (const [file, expression] of Object.entries(KNOWN_INVALID)) {
      const r = rejected.find((x) => x.file === file);
      expect(r, `${file} should be rejected`).toBeDefined();
      expect(r?.expressions[0]).toBe(expression);
    }
  });
});

describe('body shape', () => {
  it.each([
    ['an array', []],
    ['a string', 'Patient'],
    ['null', null],
    ['an object without resourceType', { name: [] }],
    ['a numeric resourceType', { resourceType: 1 }],
  ])('rejects %s as not a resource', (_label, body) => {
    const err = reject(body);
    expect(err.code).toBe('CLARION_NOT_A_RESOURCE');
    expect(err.status).toBe(400);
  });

  it('rejects a resourceType that is not an R4 type', () => {
    const err = reject({ resourceType: 'Patientt' });
    expect(err.code).toBe('CLARION_UNKNOWN_RESOURCE_TYPE');
    expect(err.issues[0].diagnostics).toContain('Patientt');
  });

  it('rejects a body of another type than the URL (wrong type)', () => {
    const err = reject({ resourceType: 'Patient' }, 'Observation');
    expect(err.code).toBe('CLARION_RESOURCE_TYPE_MISMATCH');
    expect(expressions(err)).toEqual(['resourceType']);
  });

  it('returns the resource when it is valid', () => {
    const p = { resourceType: 'Patient', id: 'p-1.a', gender: 'female', birthDate: '1970-01-01', name: [{ family: 'Smith' }] };
    expect(validateR4Resource(p, 'Patient')).toBe(p);
  });
});

describe('ids', () => {
  it.each(['a b', 'é', 'x'.repeat(65), 'a/b', ''])('rejects id %j', (id) => {
    const err = reject({ resourceType: 'Patient', id });
    expect(err.code).toBe('CLARION_INVALID_ID');
    expect(expressions(err)).toEqual(['Patient.id']);
  });

  it('accepts the full id alphabet up to 64 characters', () => {
    expect(() => validateR4Resource({ resourceType: 'Patient', id: `Az09-.${'x'.repeat(58)}` })).not.toThrow();
  });

  it('checks the ids of contained resources', () => {
    const err = reject({ resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'o 1', name: 'x' }], managingOrganization: { reference: '#o 1' } });
    expect(err.code).toBe('CLARION_VALIDATION_FAILED');
    expect(expressions(err)).toEqual(['Patient.contained[0].id']);
  });
});

describe('structure', () => {
  it('reports unknown elements with their path and parent type', () => {
    const err = reject({ resourceType: 'Patient', foo: 1, name: [{ family: 'x', bar: 2 }] });
    expect(err.code).toBe('CLARION_VALIDATION_FAILED');
    expect(expressions(err).sort()).toEqual(['Patient.foo', 'Patient.name[0].bar']);
    expect(err.issues.find((i) => i.expression?.[0] === 'Patient.name[0].bar')?.diagnostics).toContain('not an element of HumanName');
  });

  it('reports a missing required element with its cardinality', () => {
    const err = reject({ resourceType: 'Observation', code: { text: 'x' } });
    expect(expressions(err)).toEqual(['Observation.status']);
    expect(err.issues[0].code).toBe('required');
    expect(err.issues[0].diagnostics).toContain('1..1');
  });

  it('reports several values on a 0..1 element', () => {
    const err = reject({ resourceType: 'Patient', gender: ['male', 'female'] });
    expect(expressions(err)).toEqual(['Patient.gender']);
    expect(err.issues[0].diagnostics).toContain('0..1');
  });

  it('reports a single value where an array is required', () => {
    const err = reject({ resourceType: 'Patient', name: { family: 'x' } });
    expect(expressions(err)).toEqual(['Patient.name']);
  });

  it('reports bad date formats and says what is accepted', () => {
    const err = reject({ resourceType: 'Patient', birthDate: '1970-13-01', deceasedDateTime: '2020-01-01T25:00:00Z' });
    expect(expressions(err).sort()).toEqual(['Patient.birthDate', 'Patient.deceasedDateTime']);
    expect(err.issues.find((i) => i.expression?.[0] === 'Patient.birthDate')?.diagnostics).toContain('YYYY-MM-DD');
  });

  it('reports wrong JSON types with the concrete choice property name', () => {
    const err = reject({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: '1.0' } });
    expect(expressions(err)).toEqual(['Observation.valueQuantity.value']);
    expect(err.issues[0].diagnostics).toContain('JSON number');
  });

  it('rejects two types of one choice element', () => {
    const err = reject({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueString: 'a', valueBoolean: true });
    expect(expressions(err)).toEqual(['Observation.valueBoolean']);
  });

  it('rejects null, empty strings, empty arrays and empty objects', () => {
    const err = reject({ resourceType: 'Patient', active: null, name: [], birthDate: '', maritalStatus: {}, _gender: {} });
    expect(expressions(err).sort()).toEqual(['Patient._gender', 'Patient.active', 'Patient.birthDate', 'Patient.maritalStatus', 'Patient.name']);
  });

  it('reports invariant violations with the constraint key', () => {
    const err = reject({ resourceType: 'Patient', contact: [{ gender: 'male' }] });
    expect(expressions(err)).toEqual(['Patient.contact[0]']);
    expect(err.issues[0].code).toBe('invariant');
    expect(err.issues[0].diagnostics).toContain('pat-1');
  });

  it('does not treat an invariant that evaluates to empty as violated (ras-2 without probability)', () => {
    const r = { resourceType: 'RiskAssessment', status: 'final', subject: { reference: 'Patient/1' }, prediction: [{ outcome: { text: 'x' } }] };
    expect(() => validateR4Resource(r)).not.toThrow();
    expect(expressions(reject({ ...r, prediction: [{ probabilityDecimal: 200 }] }))).toEqual(['RiskAssessment.prediction[0]']);
  });

  it('accepts base64 with line breaks, rejects non-base64', () => {
    expect(() => validateR4Resource({ resourceType: 'Binary', contentType: 'text/plain', data: 'aGVs\r\nbG8=' })).not.toThrow();
    expect(expressions(reject({ resourceType: 'Binary', contentType: 'text/plain', data: 'not base64!' }))).toEqual(['Binary.data']);
  });
});

describe('required bindings on code elements', () => {
  it('rejects a gender outside administrative-gender and lists the accepted codes', () => {
    const err = reject({ resourceType: 'Patient', gender: 'man' });
    expect(expressions(err)).toEqual(['Patient.gender']);
    expect(err.issues[0].code).toBe('code-invalid');
    expect(err.issues[0].diagnostics).toContain('male, female, other, unknown');
  });

  it('rejects an Observation.status outside observation-status', () => {
    const err = reject({ resourceType: 'Observation', status: 'done', code: { text: 'x' } });
    expect(expressions(err)).toEqual(['Observation.status']);
  });

  it('checks bindings inside backbone elements, data types and nested resources', () => {
    const err = reject({
      resourceType: 'Bundle',
      type: 'collection',
      entry: [{ resource: { resourceType: 'Patient', telecom: [{ system: 'telex', value: '1' }], link: [{ other: { reference: 'Patient/2' }, type: 'same' }] } }],
    });
    expect(expressions(err).sort()).toEqual(['Bundle.entry[0].resource.link[0].type', 'Bundle.entry[0].resource.telecom[0].system']);
  });

  it('checks Narrative.status', () => {
    const err = reject({ resourceType: 'Patient', text: { status: 'bogus', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' } });
    expect(expressions(err)).toEqual(['Patient.text.status']);
  });
});

describe('meta, narrative, contained resources and extensions', () => {
  const div = (inner: string) => `<div xmlns="http://www.w3.org/1999/xhtml">${inner}</div>`;

  it('validates meta elements', () => {
    const err = reject({ resourceType: 'Patient', meta: { lastUpdated: 'yesterday', profile: ['not a uri'] } });
    expect(expressions(err).sort()).toEqual(['Patient.meta.lastUpdated', 'Patient.meta.profile[0]']);
  });

  it.each([
    ['script elements', div('<script>alert(1)</script>')],
    ['event handler attributes', div('<p onclick="x()">x</p>')],
    ['javascript: URLs', div('<a href="javascript:x()">x</a>')],
    ['a div without the XHTML namespace', '<div>x</div>'],
    ['text outside a div', 'plain text'],
    ['whitespace-only narrative', div('  ')],
  ])('rejects narrative with %s', (_label, html) => {
    const err = reject({ resourceType: 'Patient', text: { status: 'generated', div: html } });
    expect(expressions(err)).toEqual(['Patient.text.div']);
  });

  it('accepts ordinary narrative', () => {
    const html = div('<p>Peter <b>Chalmers</b> <a href="http://x">link</a> <img src="#a" alt="a"/></p><table><tr><td>1</td></tr></table>');
    expect(() => validateR4Resource({ resourceType: 'Patient', text: { status: 'generated', div: html } })).not.toThrow();
  });

  it('validates contained resources and requires them to be referenced (dom-3)', () => {
    const org = { resourceType: 'Organization', id: 'o1', name: 'x' };
    expect(() => validateR4Resource({ resourceType: 'Patient', contained: [org], managingOrganization: { reference: '#o1' } })).not.toThrow();
    expect(expressions(reject({ resourceType: 'Patient', contained: [org] }))).toEqual(['Patient.contained[0]']);
    const bad = reject({ resourceType: 'Patient', contained: [{ ...org, foo: 1 }], managingOrganization: { reference: '#o1' } });
    expect(expressions(bad)).toEqual(['Patient.contained[0].foo']);
  });

  it('reports an unknown contained resource type with its location', () => {
    const err = reject({ resourceType: 'Patient', contained: [{ resourceType: 'Foo', id: 'f' }], managingOrganization: { reference: '#f' } });
    expect(expressions(err)).toEqual(['Patient.contained[0]']);
  });

  it('validates extensions (ext-1, value types, primitive extensions)', () => {
    expect(() =>
      validateR4Resource({ resourceType: 'Patient', extension: [{ url: 'http://x', valueString: 'a' }], _birthDate: { extension: [{ url: 'http://y', valueBoolean: true }] }, birthDate: '1970' }),
    ).not.toThrow();
    expect(expressions(reject({ resourceType: 'Patient', extension: [{ url: 'http://x' }] }))).toEqual(['Patient.extension[0]']);
    expect(expressions(reject({ resourceType: 'Patient', extension: [{ valueString: 'x' }] }))).toEqual(['Patient.extension[0].url']);
  });
});
