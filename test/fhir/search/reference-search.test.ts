import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import type { Db } from '../../../src/store/db.js';
import { openTestDb } from '../../support/test-db.js';
import { all } from './fixtures.js';
import { ids, insertResources } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, all);
});
afterAll(async () => cleanup());

const sorted = async (type: string, q: string) => (await ids(db, type, q)).sort();

describe('reference search', () => {
  it('Type/id, bare id, and the type modifier', async () => {
    expect(await sorted('Observation', 'subject=Patient/p1')).toEqual(['o-bp', 'o-temp']);
    expect(await sorted('Observation', 'subject=p1')).toEqual(['o-bp', 'o-temp']);
    expect(await sorted('Observation', 'subject:Patient=p1')).toEqual(['o-bp', 'o-temp']);
    expect(await sorted('Observation', 'subject:Group=p1')).toEqual([]);
    expect(await sorted('Observation', 'subject:Group=g1')).toEqual(['o-note']);
    expect(await sorted('Observation', 'patient=Patient/p1')).toEqual(['o-bp', 'o-temp']);
    expect(await sorted('Observation', 'patient=g1')).toEqual([]);
  });

  it('versioned references and absolute URLs', async () => {
    expect(await sorted('Patient', 'organization=Organization/o1')).toEqual(['p1', 'p3']);
    expect(await sorted('Patient', 'organization=Organization/o1/_history/3')).toEqual(['p1', 'p3']);
    expect(await sorted('Patient', 'organization=http://other.org/fhir/Organization/o9')).toEqual(['p2']);
  });

  it(':identifier and :missing', async () => {
    await insertResources(db, [
      { resourceType: 'Observation', id: 'o-ident', status: 'final', code: { text: 'x' }, subject: { identifier: { system: 'http://hospital/mrn', value: 'MRN-1' } } },
    ]);
    expect(await sorted('Observation', 'subject:identifier=http://hospital/mrn|MRN-1')).toEqual(['o-ident']);
    expect(await sorted('Observation', 'performer:missing=false')).toEqual(['o-temp']);
  });

  // Regression (R4 examples: Library-library-fhir-helpers has relatedArtifact.resource "library-fhir-helpers-predecessor").
  it('a bare id also matches a reference stored as written (relative canonical, #contained)', async () => {
    await insertResources(db, [
      { resourceType: 'Library', id: 'lib-rel', status: 'active', type: { text: 'x' }, relatedArtifact: [{ type: 'predecessor', resource: 'lib-old' }] },
      { resourceType: 'Library', id: 'lib-typed', status: 'active', type: { text: 'x' }, relatedArtifact: [{ type: 'predecessor', resource: 'Library/lib-old' }] },
      { resourceType: 'RiskAssessment', id: 'ra-contained', status: 'final', subject: { reference: '#group1' }, contained: [{ resourceType: 'Group', id: 'group1', type: 'person', actual: false } as Resource] },
    ]);
    expect(await sorted('Library', 'predecessor=lib-old')).toEqual(['lib-rel', 'lib-typed']);
    expect(await sorted('Library', 'predecessor=Library/lib-old')).toEqual(['lib-typed']);
    expect(await sorted('Library', 'predecessor:Library=lib-old')).toEqual(['lib-typed']);
    expect(await sorted('RiskAssessment', 'subject=%23group1')).toEqual(['ra-contained']);
    expect(await sorted('RiskAssessment', 'subject=group1')).toEqual([]);
  });

  it('canonical references with and without version', async () => {
    await insertResources(db, [
      { resourceType: 'Questionnaire', id: 'q1', status: 'active', url: 'http://example.org/Questionnaire/q', version: '2' },
      { resourceType: 'QuestionnaireResponse', id: 'qr1', status: 'completed', questionnaire: 'http://example.org/Questionnaire/q|2' },
    ]);
    expect(await sorted('QuestionnaireResponse', 'questionnaire=http://example.org/Questionnaire/q')).toEqual(['qr1']);
    expect(await sorted('QuestionnaireResponse', 'questionnaire=http://example.org/Questionnaire/q|2')).toEqual(['qr1']);
    expect(await sorted('QuestionnaireResponse', 'questionnaire=http://example.org/Questionnaire/q|3')).toEqual([]);
  });
});
