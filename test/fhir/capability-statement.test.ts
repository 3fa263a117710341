import type { Bundle, CapabilityStatementRestResource, SearchParameter } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { loadDefinitionBundle, r4ResourceTypes } from '../../src/fhir/definitions.js';
import { validateR4Resource } from '../../src/fhir/validation.js';
import { buildCapabilityStatement, type CapabilitySearchParam } from '../../src/server/capability-statement.js';

/** A small stand-in for the search registry. */
function fakeSearchParams(type: string): CapabilitySearchParam[] {
  const common: CapabilitySearchParam[] = [
    { name: '_id', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id' },
    { name: '_lastUpdated', type: 'date', documentation: 'When the resource version last changed' },
  ];
  if (type === 'Observation') {
    return [
      ...common,
      { name: 'code', type: 'token' },
      { name: 'subject', type: 'reference', target: ['Patient', 'Group', 'Device', 'Location'] },
      { name: 'code', type: 'token' }, // a duplicate, which must not appear twice
    ];
  }
  if (type === 'Patient') {
    return [
      ...common,
      { name: 'general-practitioner', type: 'reference', definition: 'http://hl7.org/fhir/SearchParameter/Patient-general-practitioner' },
      { name: 'link', type: 'reference' }, // no target and no definition: may point at anything
    ];
  }
  return common;
}

const options = { baseUrl: 'https://fhir.example.org/r4', software: { name: 'Clarion', version: '0.1.0' }, searchParams: fakeSearchParams, date: '2025-01-01T00:00:00Z' };

function resourceOf(type: string): CapabilityStatementRestResource {
  const r = buildCapabilityStatement(options).rest?.[0].resource?.find((x) => x.type === type);
  if (!r) throw new Error(`no ${type} entry`);
  return r;
}

describe('buildCapabilityStatement', () => {
  it('validates against the R4 CapabilityStatement definition', () => {
    expect(() => validateR4Resource(buildCapabilityStatement(options), 'CapabilityStatement')).not.toThrow();
  });

  it('describes an active R4 JSON server instance at the base URL', () => {
    const cs = buildCapabilityStatement(options);
    expect(cs).toMatchObject({
      status: 'active',
      kind: 'instance',
      fhirVersion: '4.0.1',
      date: '2025-01-01T00:00:00Z',
      software: { name: 'Clarion', version: '0.1.0' },
      implementation: { url: 'https://fhir.example.org/r4' },
    });
    expect(cs.format).toEqual(['json', 'application/fhir+json', 'xml', 'application/fhir+xml']);
    expect(cs.rest).toHaveLength(1);
    expect(cs.rest?.[0].mode).toBe('server');
    expect(cs.rest?.[0].interaction?.map((i) => i.code)).toEqual(['transaction', 'batch', 'history-system']);
  });

  it('lists every R4 resource type once, with exactly the implemented interactions and behaviours', () => {
    const resources = buildCapabilityStatement(options).rest?.[0].resource ?? [];
    expect(resources.map((r) => r.type).sort()).toEqual([...r4ResourceTypes()].sort());
    for (const r of resources) {
      expect(r.interaction?.map((i) => i.code)).toEqual(['read', 'vread', 'update', 'patch', 'delete', 'history-instance', 'history-type', 'create', 'search-type']);
      expect(r).toMatchObject({
        versioning: 'versioned-update',
        readHistory: true,
        updateCreate: true,
        conditionalCreate: true,
        conditionalRead: 'not-supported',
        conditionalUpdate: true,
        conditionalDelete: 'single',
        referencePolicy: ['literal'],
      });
    }
  });

  it('lists the search parameters from the callback, once per name', () => {
    expect(resourceOf('Observation').searchParam).toEqual([
      { name: '_id', type: 'token', definition: 'http://hl7.org/fhir/SearchParameter/Resource-id' },
      { name: '_lastUpdated', type: 'date', documentation: 'When the resource version last changed' },
      { name: 'code', type: 'token' },
      { name: 'subject', type: 'reference' },
    ]);
  });

  it('derives _include values from the reference parameters', () => {
    expect(resourceOf('Observation').searchInclude).toEqual(['Observation:subject']);
    expect(resourceOf('Patient').searchInclude).toEqual(['Patient:general-practitioner', 'Patient:link']);
    expect(resourceOf('Account').searchInclude).toBeUndefined();
  });

  it('derives _revinclude values from the targets (given, from the definition, or any type)', () => {
    expect(resourceOf('Patient').searchRevInclude).toEqual(['Observation:subject', 'Patient:link']);
    // Patient-general-practitioner targets Organization, Practitioner and PractitionerRole in R4.
    expect(resourceOf('Practitioner').searchRevInclude).toEqual(['Patient:general-practitioner', 'Patient:link']);
    expect(resourceOf('Account').searchRevInclude).toEqual(['Patient:link']);
  });

  it('is a pure function of its options', () => {
    expect(buildCapabilityStatement(options)).toEqual(buildCapabilityStatement(options));
    const other = buildCapabilityStatement({ ...options, baseUrl: 'http://localhost:8080/fhir' });
    expect(other.implementation?.url).toBe('http://localhost:8080/fhir');
  });

  it('builds and validates with every R4 search parameter definition', () => {
    const bundle = loadDefinitionBundle<Bundle<SearchParameter>>('search-parameters.json');
    const byType = new Map<string, CapabilitySearchParam[]>();
    for (const e of bundle.entry ?? []) {
      const sp = e.resource;
      if (!sp) continue;
      for (const base of sp.base) {
        const list = byType.get(base) ?? [];
        list.push({ name: sp.code, type: sp.type, definition: sp.url, ...(sp.target ? { target: sp.target } : {}) });
        byType.set(base, list);
      }
    }
    const cs = buildCapabilityStatement({ ...options, searchParams: (t) => [...(byType.get('Resource') ?? []), ...(byType.get(t) ?? [])] });
    expect(() => validateR4Resource(cs)).not.toThrow();
    const patient = cs.rest?.[0].resource?.find((r) => r.type === 'Patient');
    expect(patient?.searchRevInclude).toContain('Observation:subject');
    expect(patient?.searchInclude).toContain('Patient:organization');
  });
});
