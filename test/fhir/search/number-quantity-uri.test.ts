import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/store/db.js';
import { openTestDb } from '../../support/test-db.js';
import { all } from './fixtures.js';
import { ids, insertResources } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, [
    ...all,
    { resourceType: 'RiskAssessment', id: 'ra1', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityDecimal: 0.35 }] },
    { resourceType: 'RiskAssessment', id: 'ra2', status: 'final', subject: { reference: 'Patient/p1' }, prediction: [{ probabilityDecimal: 0.8 }] },
    { resourceType: 'ValueSet', id: 'vs1', status: 'active', url: 'http://example.org/fhir/ValueSet/a/b' },
    { resourceType: 'ValueSet', id: 'vs2', status: 'active', url: 'http://example.org/fhir/ValueSet/a' },
  ]);
});
afterAll(async () => cleanup());

const sorted = async (type: string, q: string) => (await ids(db, type, q)).sort();

describe('number search with implicit precision', () => {
  it('eq uses the precision range of the search value', async () => {
    expect(await sorted('RiskAssessment', 'probability=0.35')).toEqual(['ra1']);
    expect(await sorted('RiskAssessment', 'probability=0.4')).toEqual(['ra1']);
    expect(await sorted('RiskAssessment', 'probability=0.40')).toEqual([]);
    expect(await sorted('RiskAssessment', 'probability=1')).toEqual(['ra2']);
  });
  it('prefixes compare with the value', async () => {
    expect(await sorted('RiskAssessment', 'probability=gt0.35')).toEqual(['ra2']);
    expect(await sorted('RiskAssessment', 'probability=ge0.35')).toEqual(['ra1', 'ra2']);
    expect(await sorted('RiskAssessment', 'probability=lt0.8')).toEqual(['ra1']);
    expect(await sorted('RiskAssessment', 'probability=ne0.35')).toEqual(['ra2']);
    expect(await sorted('RiskAssessment', 'probability=ap0.75')).toEqual(['ra2']);
  });
});

describe('quantity search', () => {
  it('value with system and code, or code/unit alone', async () => {
    expect(await sorted('Observation', 'value-quantity=72.5')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'value-quantity=72.5|http://unitsofmeasure.org|kg')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'value-quantity=72.5||kg')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'value-quantity=72.5|http://unitsofmeasure.org|g')).toEqual([]);
    expect(await sorted('Observation', 'value-quantity=72')).toEqual([]);
    expect(await sorted('Observation', 'value-quantity=7e1')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'value-quantity=gt37||Cel')).toEqual([]);
    expect(await sorted('Observation', 'value-quantity=ge37||Cel')).toEqual(['o-temp']);
    expect(await sorted('Observation', 'value-quantity=lt50')).toEqual(['o-temp']);
  });
  it('matches ranges (Observation.valueRange via combo-value-quantity? no: value-quantity excludes Range)', async () => {
    expect(await sorted('Observation', 'value-quantity=lt6')).toEqual([]);
  });
  it('composite code-value-quantity matches within the same component', async () => {
    expect(await sorted('Observation', 'component-code-value-quantity=http://loinc.org|8480-6$gt100')).toEqual(['o-bp']);
    expect(await sorted('Observation', 'component-code-value-quantity=http://loinc.org|8462-4$gt100')).toEqual([]);
    expect(await sorted('Observation', 'component-code-value-quantity=8462-4$80||mm[Hg]')).toEqual(['o-bp']);
    expect(await sorted('Observation', 'code-value-quantity=http://loinc.org|29463-7$lt100')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'component-code-value-quantity:missing=false')).toEqual(['o-bp']);
  });
});

describe('uri search', () => {
  it('exact, :below and :above', async () => {
    expect(await sorted('ValueSet', 'url=http://example.org/fhir/ValueSet/a')).toEqual(['vs2']);
    expect(await sorted('ValueSet', 'url:below=http://example.org/fhir/ValueSet/a')).toEqual(['vs1', 'vs2']);
    expect(await sorted('ValueSet', 'url:above=http://example.org/fhir/ValueSet/a/b/c')).toEqual(['vs1', 'vs2']);
    expect(await sorted('ValueSet', 'url:above=http://example.org/fhir/ValueSet/a')).toEqual(['vs2']);
    expect(await sorted('Patient', '_profile=http://example.org/StructureDefinition/p')).toEqual(['p1']);
  });
});
