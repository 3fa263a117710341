/**
 * The quick walk (src/fhir/quick-validation.ts) may only accept what @medplum/core's validator accepts:
 * checked over the published R4 examples and over mutations of them that break one thing each (wrong
 * JSON type, bad format, empty, null, unknown property, cardinality, missing required element, second
 * choice type, invariant). It must also take the fast path for ordinary resources, or it is useless.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OperationOutcomeError, validateResource } from '@medplum/core';
import type { OperationOutcomeIssue } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { certainlyValidR4 } from '../../src/fhir/quick-validation.js';
import { preloadR4Validator } from '../../src/fhir/validation.js';
import { EXAMPLES_DIR, exampleFiles, KNOWN_INVALID } from '../support/r4-examples.js';
import { prng } from '../support/prng.js';

preloadR4Validator();

function medplumRejects(resource: Record<string, unknown>): boolean {
  try {
    return validateResource(structuredClone(resource)).some((i) => i.severity === 'error' || i.severity === 'fatal');
  } catch (err) {
    if (err instanceof OperationOutcomeError) return ((err.outcome.issue ?? []) as OperationOutcomeIssue[]).some((i) => i.severity === 'error' || i.severity === 'fatal');
    return true;
  }
}

interface Site {
  parent: Record<string, unknown> | unknown[];
  key: string | number;
}

function sites(value: unknown, out: Site[] = []): Site[] {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.push({ parent: value, key: i });
      sites(v, out);
    });
  } else if (value && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k === 'resourceType') continue;
      out.push({ parent: value as Record<string, unknown>, key: k });
      sites(v, out);
    }
  }
  return out;
}

const REPLACEMENTS: unknown[] = [
  '', ' ', 'has  two spaces', 'not a date', '2020-13-45', '12:61:00', 'urn:uuid:XYZ', 'x y', 'é\u0001',
  0, -1, 1.5, 123456789012, true, false, null, {}, [], [{}], ['a'], { foo: 'bar' }, { url: 1 },
];

/** Applies one random break to a copy of `resource`; describes it. */
function mutate(resource: Record<string, unknown>, rnd: () => number): { mutated: Record<string, unknown>; what: string } {
  const mutated = structuredClone(resource);
  const all = sites(mutated);
  if (all.length === 0) return { mutated, what: 'nothing' };
  const site = all[Math.floor(rnd() * all.length)];
  const { parent, key } = site;
  const current = (parent as Record<string | number, unknown>)[key];
  const kind = Math.floor(rnd() * 7);
  const at = `${String(key)}`;
  const obj = parent as Record<string | number, unknown>;
  switch (kind) {
    case 0:
    case 1: {
      const r = REPLACEMENTS[Math.floor(rnd() * REPLACEMENTS.length)];
      obj[key] = structuredClone(r);
      return { mutated, what: `${at} := ${JSON.stringify(r)}` };
    }
    case 2:
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete obj[key];
      return { mutated, what: `delete ${at}` };
    case 3:
      obj[key] = Array.isArray(current) ? current[0] : [current];
      return { mutated, what: `${at} array <-> single` };
    case 4:
      if (Array.isArray(parent)) parent.push(structuredClone(current));
      else obj[`${String(key)}Quantity`] = { value: 1 };
      return { mutated, what: `${at} duplicated / sibling choice` };
    case 5:
      if (!Array.isArray(parent)) obj[`_${String(key)}`] = { extension: [{ url: 'http://example.org/x' }] };
      else obj[key] = null;
      return { mutated, what: `${at} primitive extension / null item` };
    default:
      if (current && typeof current === 'object' && !Array.isArray(current)) (current as Record<string, unknown>).unknownThing = 'x';
      else obj[key] = { value: current };
      return { mutated, what: `${at} gains an unknown property / is wrapped` };
  }
}

const examples = exampleFiles().map((f) => ({ file: f, resource: JSON.parse(readFileSync(join(EXAMPLES_DIR, f), 'utf8')) as Record<string, unknown> }));

describe('quick validation never accepts what Medplum rejects', () => {
  it('over the R4 examples, and takes the fast path for most valid ones', { timeout: 300_000 }, () => {
    const wrong: string[] = [];
    let quick = 0;
    // Every third example (the whole set is validated in validation.test.ts), to keep the suite quick.
    for (const [n, { file, resource }] of examples.entries()) {
      if (n % 3 !== 0 || !certainlyValidR4(resource)) continue;
      quick++;
      if (medplumRejects(resource)) wrong.push(file);
    }
    const valid = Math.ceil(examples.length / 3) - Object.keys(KNOWN_INVALID).length;
    console.info(`${Math.ceil(examples.length / 3)} examples, at least ${valid} valid: ${quick} accepted by the quick walk`);
    expect(wrong).toEqual([]);
    expect(quick / valid).toBeGreaterThan(0.5);
  });

  it('over mutations of the examples that each break one thing', { timeout: 300_000 }, () => {
    const rnd = prng(20261122);
    const wrong: string[] = [];
    let tried = 0;
    let quick = 0;
    for (const [n, { file, resource }] of examples.entries()) {
      if (n % 9 !== 0) continue;
      for (let i = 0; i < 8; i++) {
        const { mutated, what } = mutate(resource, rnd);
        tried++;
        if (!certainlyValidR4(mutated)) continue;
        quick++;
        if (medplumRejects(mutated)) wrong.push(`${file}: ${what}`);
      }
    }
    console.info(`${tried} mutations, ${quick} accepted by the quick walk`);
    expect(wrong).toEqual([]);
  });
});

describe('quick validation takes the fast path', () => {
  it('for an ordinary Encounter, Patient and Observation', () => {
    const encounter = {
      resourceType: 'Encounter',
      status: 'in-progress',
      class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' },
      subject: { reference: 'Patient/p1' },
      period: { start: '2026-11-22T07:00:00Z' },
      extension: [{ url: 'http://example.org/ext', valueString: 'x' }],
    };
    const patient = { resourceType: 'Patient', id: 'p1', name: [{ family: 'Chalmers', given: ['Peter'] }], gender: 'male', birthDate: '1974-12-25', active: true };
    const observation = {
      resourceType: 'Observation',
      status: 'final',
      code: { coding: [{ system: 'http://loinc.org', code: '29463-7' }] },
      subject: { reference: 'Patient/p1' },
      valueQuantity: { value: 67.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
    };
    for (const r of [encounter, patient, observation]) expect(certainlyValidR4(r), r.resourceType).toBe(true);
  });

  it('for contained resources and Bundle entries', () => {
    expect(certainlyValidR4({ resourceType: 'Patient', contained: [{ resourceType: 'Organization', id: 'o', name: 'Acme' }], managingOrganization: { reference: '#o' } })).toBe(true);
    expect(certainlyValidR4({ resourceType: 'Bundle', type: 'collection', entry: [{ fullUrl: 'urn:uuid:0b8c1d0e-2f35-4c6b-9d47-5a1e2f3b4c5d', resource: { resourceType: 'Patient', active: true } }] })).toBe(true);
  });

  it('but not for what it leaves to Medplum: primitive extensions, an unknown nested type, an invariant broken', () => {
    expect(certainlyValidR4({ resourceType: 'Patient', birthDate: '1974', _birthDate: { extension: [{ url: 'http://x', valueString: 'y' }] } })).toBe(false);
    expect(certainlyValidR4({ resourceType: 'Patient', contained: [{ resourceType: 'Period', start: '2020' }] })).toBe(false);
    expect(certainlyValidR4({ resourceType: 'Bundle', type: 'collection', entry: [{ resource: { resourceType: 'Patient', gender: 5 } }] })).toBe(false);
    expect(certainlyValidR4({ resourceType: 'Patient', extension: [{ url: 'http://x' }] })).toBe(false); // ext-1
    expect(certainlyValidR4({ resourceType: 'Encounter', class: { code: 'IMP' } })).toBe(false); // status missing
  });
});
