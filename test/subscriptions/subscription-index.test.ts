/**
 * SubscriptionIndex: candidate lookup through the selective-filter index plus the scan list, filter
 * evaluation (AND, modifiers, prefixes, string/date filters), per-type filters, add/remove/update,
 * topic versions, and the proof that candidate cost does not grow with non-matching subscriptions.
 */
import { describe, expect, it } from 'vitest';
import type { Resource } from 'fhir/r4.js';
import { extractSearchIndex } from '../../src/fhir/search/extract.js';
import { FhirError } from '../../src/fhir/errors.js';
import type { SubscriptionFilter, SubscriptionSpec } from '../../src/subscriptions/subscription-model.js';
import { SubscriptionIndex, compileSubscriptionFilters } from '../../src/subscriptions/subscription-index.js';

const ENC_TOPIC = 'http://example.org/FHIR/SubscriptionTopic/encounter-complete';
const PAT_TOPIC = 'https://clarion.dev/fhir/SubscriptionTopic/patient-changed';
const FEED_TOPIC = 'http://example.org/feed';

function spec(id: string, topic: string, filters: SubscriptionFilter[]): SubscriptionSpec {
  return {
    id,
    topic,
    status: 'active',
    filters,
    channel: { type: 'rest-hook', endpoint: 'https://example.org/hook', headers: [] },
    contentType: 'application/fhir+json',
    content: 'id-only',
    notificationVersion: 'R4',
  };
}

/** `patient=Patient/1` or `Encounter?patient=Patient/1` → a SubscriptionFilter. */
function f(s: string): SubscriptionFilter {
  const q = s.indexOf('?');
  const resourceType = q > 0 ? s.slice(0, q) : undefined;
  const rest = q > 0 ? s.slice(q + 1) : s;
  const eq = rest.indexOf('=');
  const [parameter, modifier] = rest.slice(0, eq).split(':');
  return { ...(resourceType ? { resourceType } : {}), parameter, ...(modifier ? { modifier } : {}), value: rest.slice(eq + 1) };
}

function add(index: SubscriptionIndex, id: string, topic: string, types: string[], ...filters: string[]): void {
  const s = spec(id, topic, filters.map(f));
  index.add(s, compileSubscriptionFilters(s.filters, types));
}

/** Ids of the subscriptions that get the change: candidates, then matches. */
function matching(index: SubscriptionIndex, topic: string, r: Resource): { candidates: string[]; matched: string[] } {
  const idx = extractSearchIndex(r);
  const candidates = index.candidates(topic, r.resourceType, idx).sort();
  return { candidates, matched: candidates.filter((id) => index.matches(id, r, idx)) };
}

const encounter = (fields: Record<string, unknown>): Resource => ({ resourceType: 'Encounter', id: 'e1', status: 'finished', class: { system: 'http://terminology.hl7.org/CodeSystem/v3-ActCode', code: 'IMP' }, ...fields }) as Resource;
const ofPatient = (id: string, extra: Record<string, unknown> = {}) => encounter({ subject: { reference: `Patient/${id}` }, ...extra });

describe('SubscriptionIndex: candidates and matches', () => {
  const index = new SubscriptionIndex();
  const E = ['Encounter'];
  add(index, 'p1', ENC_TOPIC, E, 'patient=Patient/1');
  add(index, 'p2', ENC_TOPIC, E, 'patient=Patient/2');
  add(index, 'p1or2', ENC_TOPIC, E, 'patient=Patient/1,Patient/2');
  add(index, 'all', ENC_TOPIC, E);
  add(index, 'imp', ENC_TOPIC, E, 'class=http://terminology.hl7.org/CodeSystem/v3-ActCode|IMP');
  add(index, 'notImp', ENC_TOPIC, E, 'class:not=IMP');
  add(index, 'long', ENC_TOPIC, E, 'length=gt60');
  add(index, 'noSubject', ENC_TOPIC, E, 'subject:missing=true');
  add(index, 'p1amb', ENC_TOPIC, E, 'patient=Patient/1', 'class=AMB');
  add(index, 'p1imp', ENC_TOPIC, E, 'class=IMP', 'patient=Patient/1');
  add(index, 'subjectTyped', ENC_TOPIC, E, 'subject:Patient=1');
  add(index, 'otherTopic', PAT_TOPIC, ['Patient'], '_id=1');

  it('indexes by the selective filter and scans the rest', () => {
    const r = ofPatient('1', { length: { value: 90, system: 'http://unitsofmeasure.org', code: 'min' } });
    const { candidates, matched } = matching(index, ENC_TOPIC, r);
    // p2 is not a candidate (keyed under patient>Patient/2); scan-list entries always are
    expect(candidates).toEqual(['all', 'imp', 'long', 'noSubject', 'notImp', 'p1', 'p1amb', 'p1imp', 'p1or2', 'subjectTyped']);
    expect(matched).toEqual(['all', 'imp', 'long', 'p1', 'p1imp', 'p1or2', 'subjectTyped']);
  });

  it('token :not, :missing and number prefix filters', () => {
    const r = encounter({ class: { code: 'AMB' }, length: { value: 30 } });
    expect(matching(index, ENC_TOPIC, r).matched).toEqual(['all', 'noSubject', 'notImp']);
  });

  it('multiple filters are AND-ed', () => {
    expect(matching(index, ENC_TOPIC, ofPatient('1', { class: { code: 'AMB' } })).matched).toEqual(['all', 'notImp', 'p1', 'p1amb', 'p1or2', 'subjectTyped']);
    expect(matching(index, ENC_TOPIC, ofPatient('2')).matched).toEqual(['all', 'imp', 'p1or2', 'p2']);
  });

  it('other topics and other resource types are not candidates', () => {
    expect(matching(index, 'http://example.org/unknown', ofPatient('1')).candidates).toEqual([]);
    expect(index.candidates(ENC_TOPIC, 'Patient', extractSearchIndex({ resourceType: 'Patient', id: '1' }))).toEqual([]);
    expect(matching(index, PAT_TOPIC, { resourceType: 'Patient', id: '1' }).matched).toEqual(['otherTopic']);
    expect(matching(index, PAT_TOPIC, { resourceType: 'Patient', id: '2' }).candidates).toEqual([]);
  });

  it('string, exact string and date filters (with prefixes)', () => {
    const idx = new SubscriptionIndex();
    const P = ['Patient'];
    add(idx, 'name', PAT_TOPIC, P, 'name=smi');
    add(idx, 'exact', PAT_TOPIC, P, 'family:exact=Smith');
    add(idx, 'exactLower', PAT_TOPIC, P, 'family:exact=smith');
    add(idx, 'contains', PAT_TOPIC, P, 'name:contains=mit');
    add(idx, 'born2000s', PAT_TOPIC, P, 'birthdate=ge2000-01-01', 'birthdate=lt2010');
    add(idx, 'bornGt', PAT_TOPIC, P, 'birthdate=gt2005');
    add(idx, 'identifier', PAT_TOPIC, P, 'identifier=urn:mrn|42', 'name=smith');
    const smith = { resourceType: 'Patient', id: 'x', name: [{ family: 'Smith', given: ['Ann'] }], birthDate: '2004-05-06', identifier: [{ system: 'urn:mrn', value: '42' }] } as Resource;
    expect(matching(idx, PAT_TOPIC, smith).matched).toEqual(['born2000s', 'contains', 'exact', 'identifier', 'name']);
    const other = { resourceType: 'Patient', id: 'y', name: [{ family: 'Jones' }], birthDate: '2011-01-01', identifier: [{ system: 'urn:mrn', value: '43' }] } as Resource;
    const res = matching(idx, PAT_TOPIC, other);
    expect(res.candidates).not.toContain('identifier');
    expect(res.matched).toEqual(['bornGt']);
  });
});

describe('SubscriptionIndex: filters and resource types', () => {
  const FEED = ['Encounter', 'Observation'];
  const obs = (patient: string): Resource => ({ resourceType: 'Observation', id: 'o1', status: 'final', code: { text: 'x' }, subject: { reference: `Patient/${patient}` } }) as Resource;

  it('a filter for another resource type does not apply (R5 filterBy.resourceType)', () => {
    const idx = new SubscriptionIndex();
    add(idx, 'encOnly', FEED_TOPIC, FEED, 'Encounter?patient=Patient/1');
    expect(matching(idx, FEED_TOPIC, ofPatient('1')).matched).toEqual(['encOnly']);
    expect(matching(idx, FEED_TOPIC, ofPatient('2')).matched).toEqual([]);
    expect(matching(idx, FEED_TOPIC, obs('2')).matched).toEqual(['encOnly']);
    add(idx, 'both', FEED_TOPIC, FEED, 'Encounter?patient=Patient/1', 'Observation?patient=Patient/1');
    expect(matching(idx, FEED_TOPIC, obs('1')).matched).toEqual(['both', 'encOnly']);
    expect(matching(idx, FEED_TOPIC, obs('2')).matched).toEqual(['encOnly']);
  });

  it('an untyped filter applies to every type; a type lacking its parameter never matches', () => {
    const idx = new SubscriptionIndex();
    add(idx, 'patient', FEED_TOPIC, FEED, 'patient=Patient/1');
    add(idx, 'class', FEED_TOPIC, FEED, 'class=IMP');
    expect(matching(idx, FEED_TOPIC, obs('1')).matched).toEqual(['patient']);
    expect(matching(idx, FEED_TOPIC, ofPatient('1')).matched).toEqual(['class', 'patient']);
    const compiled = compileSubscriptionFilters([f('class=IMP')], FEED);
    expect(compiled.byType.get('Observation')?.never).toMatch(/no search parameter 'class' for Observation/);
  });

  it('_type narrows the resource types', () => {
    const idx = new SubscriptionIndex();
    add(idx, 'obsOnly', FEED_TOPIC, FEED, '_type=Observation');
    expect(matching(idx, FEED_TOPIC, obs('1')).matched).toEqual(['obsOnly']);
    expect(matching(idx, FEED_TOPIC, ofPatient('1')).candidates).toEqual([]);
  });

  it('invalid filters are FhirErrors', () => {
    const bad = ['nope=1', 'patient:bogus=Patient/1', 'length=xx', 'Encounter?nope=1', 'Nope?patient=1', 'patient.gender=male', 'Encounter?subject:Patient.name=x'];
    for (const b of bad) expect(() => compileSubscriptionFilters([f(b)], FEED), b).toThrow(FhirError);
    expect(() => compileSubscriptionFilters([f('Patient?gender=male')], FEED)).not.toThrow();
  });

  it('a filter that can never match files the subscription nowhere', () => {
    const idx = new SubscriptionIndex();
    add(idx, 'never', ENC_TOPIC, ['Encounter'], 'subject:Group=Patient/1');
    expect(matching(idx, ENC_TOPIC, ofPatient('1')).candidates).toEqual([]);
  });
});

describe('SubscriptionIndex: add, remove, update, versions', () => {
  it('add replaces the subscription with the same id; remove unfiles it', () => {
    const idx = new SubscriptionIndex();
    add(idx, 's', ENC_TOPIC, ['Encounter'], 'patient=Patient/1');
    expect(matching(idx, ENC_TOPIC, ofPatient('1')).matched).toEqual(['s']);
    add(idx, 's', ENC_TOPIC, ['Encounter'], 'patient=Patient/2');
    expect(idx.size).toBe(1);
    expect(matching(idx, ENC_TOPIC, ofPatient('1')).candidates).toEqual([]);
    expect(matching(idx, ENC_TOPIC, ofPatient('2')).matched).toEqual(['s']);
    add(idx, 's', ENC_TOPIC, ['Encounter'], 'class:not=AMB');
    expect(matching(idx, ENC_TOPIC, ofPatient('1')).matched).toEqual(['s']);
    expect(idx.remove('s')).toBe(true);
    expect(idx.remove('s')).toBe(false);
    expect(idx.size).toBe(0);
    expect(matching(idx, ENC_TOPIC, ofPatient('2')).candidates).toEqual([]);
    expect(idx.matches('s', ofPatient('2'))).toBe(false);
  });


  it('subscriptions sharing an index key come and go independently', () => {
    const idx = new SubscriptionIndex();
    const candidates = () => matching(idx, ENC_TOPIC, ofPatient('1')).candidates;
    add(idx, 'a', ENC_TOPIC, ['Encounter'], 'patient=Patient/1');
    add(idx, 'b', ENC_TOPIC, ['Encounter'], 'patient=Patient/1');
    add(idx, 'c', ENC_TOPIC, ['Encounter'], 'patient=Patient/1,Patient/1');
    expect(candidates()).toEqual(['a', 'b', 'c']);
    idx.remove('b');
    expect(candidates()).toEqual(['a', 'c']);
    idx.remove('a');
    expect(candidates()).toEqual(['c']);
    add(idx, 'a', ENC_TOPIC, ['Encounter'], 'patient=Patient/1');
    expect(candidates()).toEqual(['a', 'c']);
    idx.remove('c');
    idx.remove('a');
    expect(candidates()).toEqual([]);
    expect(idx.size).toBe(0);
  });
  it('a topic referenced as url|version only gets events of that version', () => {
    const idx = new SubscriptionIndex();
    add(idx, 'any', ENC_TOPIC, ['Encounter']);
    add(idx, 'v1', `${ENC_TOPIC}|1.0.0`, ['Encounter']);
    add(idx, 'v2', `${ENC_TOPIC}|2.0.0`, ['Encounter']);
    const r = ofPatient('1');
    expect(idx.candidates(`${ENC_TOPIC}|1.0.0`, 'Encounter', extractSearchIndex(r)).sort()).toEqual(['any', 'v1']);
    expect(idx.candidates(ENC_TOPIC, 'Encounter', extractSearchIndex(r)).sort()).toEqual(['any', 'v1', 'v2']);
  });
});

describe('SubscriptionIndex: cost does not grow with non-matching subscriptions', () => {
  it('one candidate and one evaluation whatever the number of non-matching subscriptions', () => {
    const r = ofPatient('target');
    const rIndex = extractSearchIndex(r);
    for (const S of [0, 100, 1_000, 10_000]) {
      const idx = new SubscriptionIndex();
      for (let i = 0; i < S; i++) add(idx, `n${i}`, ENC_TOPIC, ['Encounter'], `patient=Patient/other-${i}`, 'class=IMP');
      add(idx, 'hit', ENC_TOPIC, ['Encounter'], 'patient=Patient/target', 'class=IMP');
      const before = idx.evaluations;
      const candidates = idx.candidates(ENC_TOPIC, 'Encounter', rIndex);
      const matched = candidates.filter((id) => idx.matches(id, r, rIndex));
      expect(candidates, `S=${S}`).toEqual(['hit']);
      expect(matched).toEqual(['hit']);
      expect(idx.evaluations - before, `S=${S}`).toBe(1);
    }
  });
});
