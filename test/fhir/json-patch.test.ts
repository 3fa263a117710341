import type { Patient, Resource } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { FhirError } from '../../src/fhir/errors.js';
import { applyJsonPatch } from '../../src/fhir/json-patch.js';

const patient = (): Patient => ({
  resourceType: 'Patient',
  id: 'p1',
  active: true,
  name: [{ family: 'Chalmers', given: ['Peter', 'James'] }],
  gender: 'male',
});

/** Applies a patch to an arbitrary document (as a Basic resource) to run RFC 6902's own examples. */
function patchDoc(doc: Record<string, unknown>, ops: unknown): Record<string, unknown> {
  const { resourceType: _rt, id: _id, ...rest } = applyJsonPatch({ resourceType: 'Basic', id: 'b', ...doc }, ops) as unknown as Record<string, unknown>;
  return rest;
}

function patchError(resource: Resource, ops: unknown): FhirError {
  try {
    applyJsonPatch(resource, ops);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error('expected the patch to fail');
}

describe('RFC 6902 operations (appendix A examples)', () => {
  it('adds an object member and an array element', () => {
    expect(patchDoc({ foo: 'bar' }, [{ op: 'add', path: '/baz', value: 'qux' }])).toEqual({ foo: 'bar', baz: 'qux' });
    expect(patchDoc({ foo: ['bar', 'baz'] }, [{ op: 'add', path: '/foo/1', value: 'qux' }])).toEqual({ foo: ['bar', 'qux', 'baz'] });
    expect(patchDoc({ foo: ['bar'] }, [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }])).toEqual({ foo: ['bar', ['abc', 'def']] });
    expect(patchDoc({ foo: 'bar' }, [{ op: 'add', path: '/child', value: { grandchild: {} } }])).toEqual({ foo: 'bar', child: { grandchild: {} } });
  });

  it('removes an object member and an array element', () => {
    expect(patchDoc({ baz: 'qux', foo: 'bar' }, [{ op: 'remove', path: '/baz' }])).toEqual({ foo: 'bar' });
    expect(patchDoc({ foo: ['bar', 'qux', 'baz'] }, [{ op: 'remove', path: '/foo/1' }])).toEqual({ foo: ['bar', 'baz'] });
  });

  it('replaces a value', () => {
    expect(patchDoc({ baz: 'qux', foo: 'bar' }, [{ op: 'replace', path: '/baz', value: 'boo' }])).toEqual({ baz: 'boo', foo: 'bar' });
  });

  it('moves a value and an array element', () => {
    const doc = { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } };
    expect(patchDoc(doc, [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }])).toEqual({ foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } });
    expect(patchDoc({ foo: ['all', 'grass', 'cows', 'eat'] }, [{ op: 'move', from: '/foo/1', path: '/foo/3' }])).toEqual({ foo: ['all', 'cows', 'eat', 'grass'] });
  });

  it('copies a value without aliasing it', () => {
    const out = patchDoc({ a: { b: 1 } }, [
      { op: 'copy', from: '/a', path: '/c' },
      { op: 'replace', path: '/c/b', value: 2 },
    ]);
    expect(out).toEqual({ a: { b: 1 }, c: { b: 2 } });
  });

  it('tests values with JSON equality (key order does not matter, array order does)', () => {
    const doc = { baz: 'qux', foo: ['a', 2, 'c'], o: { x: 1, y: [1] } };
    expect(patchDoc(doc, [{ op: 'test', path: '/baz', value: 'qux' }, { op: 'test', path: '/foo/1', value: 2 }, { op: 'test', path: '/o', value: { y: [1], x: 1 } }])).toEqual(doc);
    const err = patchError({ resourceType: 'Basic', id: 'b', baz: 'qux' } as Resource, [{ op: 'test', path: '/baz', value: 'bar' }]);
    expect(err.message).toContain('test failed');
  });

  it('decodes ~0 and ~1 in pointers', () => {
    expect(patchDoc({ 'a/b': 1, 'm~n': 2 }, [{ op: 'test', path: '/a~1b', value: 1 }, { op: 'remove', path: '/m~0n' }])).toEqual({ 'a/b': 1 });
  });
});

describe('FHIR resources', () => {
  it('patches a Patient and leaves the input untouched', () => {
    const p = patient();
    const out = applyJsonPatch(p, [
      { op: 'test', path: '/gender', value: 'male' },
      { op: 'replace', path: '/gender', value: 'female' },
      { op: 'add', path: '/name/0/given/-', value: 'Jim' },
      { op: 'remove', path: '/active' },
      { op: 'add', path: '/birthDate', value: '1974-12-25' },
    ]) as Patient;
    expect(out).toEqual({ resourceType: 'Patient', id: 'p1', name: [{ family: 'Chalmers', given: ['Peter', 'James', 'Jim'] }], gender: 'female', birthDate: '1974-12-25' });
    expect(p).toEqual(patient());
  });

  it('accepts an empty patch and operations that keep id and resourceType', () => {
    expect(applyJsonPatch(patient(), [])).toEqual(patient());
    expect(applyJsonPatch(patient(), [{ op: 'replace', path: '/id', value: 'p1' }, { op: 'test', path: '/resourceType', value: 'Patient' }])).toEqual(patient());
  });

  it.each([
    ['replace id', [{ op: 'replace', path: '/id', value: 'other' }]],
    ['remove id', [{ op: 'remove', path: '/id' }]],
    ['replace resourceType', [{ op: 'replace', path: '/resourceType', value: 'Person' }]],
    ['replace the whole document', [{ op: 'replace', path: '', value: { resourceType: 'Patient', id: 'p2' } }]],
    ['move id away', [{ op: 'move', from: '/id', path: '/text' }]],
  ])('refuses to %s', (_label, ops) => {
    const err = patchError(patient(), ops);
    expect(err.code).toBe('CLARION_PATCH_IDENTITY');
  });

  it('does not let a "__proto__" member change the prototype', () => {
    const out = applyJsonPatch(patient(), [{ op: 'add', path: '/__proto__', value: { polluted: true } }]) as unknown as Record<string, unknown>;
    expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(out)).toContain('__proto__');
  });
});

describe('errors name the operation, the path and the reason', () => {
  it.each([
    ['not an array', { op: 'add' }, /JSON array/],
    ['an operation that is not an object', ['x'], /operation 0 is not a JSON object/],
    ['an unknown op', [{ op: 'merge', path: '/a' }], /operation 0: 'op' must be one of/],
    ['a missing path', [{ op: 'remove' }], /operation 0 \(remove\): 'path' must be a JSON Pointer string/],
    ['a path without a leading slash', [{ op: 'remove', path: 'gender' }], /not a JSON Pointer/],
    ['a bad escape', [{ op: 'remove', path: '/a~2b' }], /invalid escape/],
    ['a missing value', [{ op: 'add', path: '/birthDate' }], /operation 0 \(add "\/birthDate"\): 'add' requires a 'value' member/],
    ['removing a missing member', [{ op: 'remove', path: '/birthDate' }], /"\/birthDate" does not exist/],
    ['replacing a missing member', [{ op: 'replace', path: '/birthDate', value: 'x' }], /does not exist/],
    ['a missing parent', [{ op: 'add', path: '/contact/0/name', value: {} }], /no "\/contact"/],
    ['an out-of-bounds index', [{ op: 'add', path: '/name/5', value: {} }], /index 5 in "\/name\/5" is out of bounds \(array length 1\)/],
    ['a non-numeric index', [{ op: 'remove', path: '/name/first' }], /not an array index/],
    ['a leading zero index', [{ op: 'remove', path: '/name/01' }], /not an array index/],
    ['remove with "-"', [{ op: 'remove', path: '/name/-' }], /not an array index/],
    ['moving into a child', [{ op: 'move', from: '/name', path: '/name/0/x' }], /into its own child/],
    ['a missing from', [{ op: 'copy', path: '/x' }], /'from' must be a JSON Pointer string/],
    ['a later failing operation', [{ op: 'test', path: '/gender', value: 'male' }, { op: 'test', path: '/gender', value: 'female' }], /operation 1 \(test "\/gender"\): test failed/],
  ])('%s', (_label, ops, message) => {
    const err = patchError(patient(), ops);
    expect(err.code).toBe('CLARION_INVALID_PATCH');
    expect(err.status).toBe(400);
    expect(err.issues[0].diagnostics).toMatch(message);
  });

  it('gives the FHIRPath-style location of the failing pointer', () => {
    const err = patchError(patient(), [{ op: 'remove', path: '/name/0/suffix' }]);
    expect(err.issues[0].expression).toEqual(['Patient.name[0].suffix']);
  });

  it('is atomic: a failing operation leaves the input as it was', () => {
    const p = patient();
    patchError(p, [{ op: 'replace', path: '/gender', value: 'female' }, { op: 'remove', path: '/nope' }]);
    expect(p).toEqual(patient());
  });
});
