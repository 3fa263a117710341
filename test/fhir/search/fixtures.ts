/** Small hand-made resources for search tests. */
import type { Observation, Organization, Patient, Practitioner, Resource } from 'fhir/r4.js';

export const patients: Patient[] = [
  {
    resourceType: 'Patient',
    id: 'p1',
    meta: { lastUpdated: '2024-01-01T10:00:00.000Z', tag: [{ system: 'http://tags', code: 'vip' }], profile: ['http://example.org/StructureDefinition/p'] },
    active: true,
    gender: 'male',
    birthDate: '1980-05-12',
    name: [{ family: 'Chalmers', given: ['Peter', 'James'], prefix: ['Mr.'] }],
    identifier: [{ system: 'http://hospital/mrn', value: 'MRN-1', type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }], text: 'Medical record' } }],
    telecom: [{ system: 'phone', value: '555-1234' }, { system: 'email', value: 'peter@example.org' }],
    address: [{ line: ['1 Main St'], city: 'Springfield', postalCode: '12345', country: 'US' }],
    managingOrganization: { reference: 'Organization/o1' },
    generalPractitioner: [{ reference: 'Practitioner/dr1' }],
  },
  {
    resourceType: 'Patient',
    id: 'p2',
    meta: { lastUpdated: '2024-01-02T10:00:00.000Z' },
    active: false,
    gender: 'female',
    birthDate: '1992',
    name: [{ family: 'Muñoz', given: ['Zoë'], text: 'Zoë Muñoz' }],
    identifier: [{ system: 'http://hospital/mrn', value: 'MRN-2' }, { system: 'http://other|sys', value: 'a,b$c|d' }],
    address: [{ city: 'Shelbyville', country: 'US' }],
    managingOrganization: { reference: 'http://other.org/fhir/Organization/o9' },
  },
  {
    resourceType: 'Patient',
    id: 'p3',
    meta: { lastUpdated: '2024-01-03T10:00:00.000Z', tag: [{ system: 'http://tags', code: 'test' }] },
    gender: 'other',
    birthDate: '2001-12-31',
    deceasedDateTime: '2020-03-04T10:00:00Z',
    name: [{ family: 'Peterson', given: ['Anna'] }],
    managingOrganization: { reference: 'Organization/o1/_history/3' },
  },
  {
    resourceType: 'Patient',
    id: 'p4',
    meta: { lastUpdated: '2024-01-04T10:00:00.000Z' },
    name: [{ family: 'van der Berg', given: ['Pete'] }],
    link: [{ other: { reference: 'Patient/p1' }, type: 'seealso' }],
  },
];

export const organizations: Organization[] = [
  { resourceType: 'Organization', id: 'o1', name: 'Acme Health', identifier: [{ system: 'http://orgs', value: 'ACME' }], active: true },
  { resourceType: 'Organization', id: 'o2', name: 'Other Clinic', partOf: { reference: 'Organization/o1' } },
];

export const practitioners: Practitioner[] = [{ resourceType: 'Practitioner', id: 'dr1', name: [{ family: 'House', given: ['Gregory'] }] }];

export const observations: Observation[] = [
  {
    resourceType: 'Observation',
    id: 'o-bp',
    status: 'final',
    category: [{ coding: [{ system: 'http://terminology.hl7.org/CodeSystem/observation-category', code: 'vital-signs' }] }],
    code: { coding: [{ system: 'http://loinc.org', code: '85354-9', display: 'Blood pressure panel' }], text: 'Blood pressure' },
    subject: { reference: 'Patient/p1' },
    effectiveDateTime: '2023-06-15T08:30:00Z',
    component: [
      {
        code: { coding: [{ system: 'http://loinc.org', code: '8480-6', display: 'Systolic' }] },
        valueQuantity: { value: 120, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
      },
      {
        code: { coding: [{ system: 'http://loinc.org', code: '8462-4', display: 'Diastolic' }] },
        valueQuantity: { value: 80, unit: 'mmHg', system: 'http://unitsofmeasure.org', code: 'mm[Hg]' },
      },
    ],
  },
  {
    resourceType: 'Observation',
    id: 'o-weight',
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '29463-7', display: 'Body weight' }] },
    subject: { reference: 'Patient/p2' },
    effectivePeriod: { start: '2023-01-01', end: '2023-01-31' },
    valueQuantity: { value: 72.5, unit: 'kg', system: 'http://unitsofmeasure.org', code: 'kg' },
  },
  {
    resourceType: 'Observation',
    id: 'o-temp',
    status: 'preliminary',
    code: { coding: [{ system: 'http://loinc.org', code: '8310-5', display: 'Body temperature' }] },
    subject: { reference: 'Patient/p1' },
    performer: [{ reference: 'Practitioner/dr1' }],
    effectiveDateTime: '2024-02',
    valueQuantity: { value: 37.0, unit: 'Cel', system: 'http://unitsofmeasure.org', code: 'Cel' },
  },
  {
    resourceType: 'Observation',
    id: 'o-note',
    status: 'final',
    code: { text: 'Free text note' },
    subject: { reference: 'Group/g1' },
    valueString: 'Patient feels fine',
  },
  {
    resourceType: 'Observation',
    id: 'o-range',
    status: 'amended',
    code: { coding: [{ system: 'http://loinc.org', code: '2339-0' }] },
    subject: { reference: 'Patient/p3' },
    valueRange: { low: { value: 5, unit: 'mmol/L' }, high: { value: 10, unit: 'mmol/L' } },
  },
];

export const all: Resource[] = [...patients, ...organizations, ...practitioners, ...observations];
