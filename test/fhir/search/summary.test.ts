import { describe, expect, it } from 'vitest';
import type { Patient } from 'fhir/r4.js';
import { applySummaryOrElements, trimsResources } from '../../../src/fhir/search/summary.js';
import { patients, observations } from './fixtures.js';

const p = { ...patients[0], text: { status: 'generated', div: '<div xmlns="http://www.w3.org/1999/xhtml">x</div>' }, photo: [{ contentType: 'image/png' }] } as Patient;

describe('applySummaryOrElements', () => {
  it('_summary=true keeps isSummary elements only', () => {
    const s = applySummaryOrElements(p, { summary: 'true' }) as Patient;
    expect(Object.keys(s).sort()).toEqual(['active', 'address', 'birthDate', 'gender', 'id', 'identifier', 'managingOrganization', 'meta', 'name', 'resourceType', 'telecom']);
    expect(s).not.toBe(p);
    expect(p.photo).toBeDefined();
  });

  it('handles choice elements', () => {
    const o = applySummaryOrElements(observations[1], { summary: 'true' });
    expect(o).toHaveProperty('valueQuantity');
    expect(o).toHaveProperty('effectivePeriod');
    const e = applySummaryOrElements(observations[1], { elements: ['value[x]'] });
    expect(Object.keys(e).sort()).toEqual(['code', 'id', 'resourceType', 'status', 'valueQuantity']);
  });

  it('_summary=text, data and _elements', () => {
    expect(Object.keys(applySummaryOrElements(p, { summary: 'text' })).sort()).toEqual(['id', 'meta', 'resourceType', 'text']);
    const d = applySummaryOrElements(p, { summary: 'data' });
    expect(d).not.toHaveProperty('text');
    expect(d).toHaveProperty('photo');
    expect(Object.keys(applySummaryOrElements(p, { elements: ['gender', 'name'] })).sort()).toEqual(['gender', 'id', 'meta', 'name', 'resourceType']);
    expect(applySummaryOrElements(p, { summary: 'false' })).toBe(p);
    expect(trimsResources({ summary: 'count' })).toBe(false);
    expect(trimsResources({ elements: ['name'] })).toBe(true);
  });
});
