import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import type { Bundle, Patient } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { FhirError } from '../../src/fhir/errors.js';
import { isXmlMediaType, jsonToXml, resourceToXml, xmlToResource } from '../../src/fhir/xml/fhir-xml.js';
import { plainDecimal } from '../../src/fhir/xml/write-preparation.js';
import { EXAMPLES_DIR, exampleFiles } from '../support/r4-examples.js';

const NS = 'xmlns="http://hl7.org/fhir"';
const XHTML = 'xmlns="http://www.w3.org/1999/xhtml"';

/** The FhirError xmlToResource throws for `xml` (fails the test if it accepts it). */
function refusal(xml: string): FhirError {
  try {
    xmlToResource(xml);
  } catch (err) {
    if (err instanceof FhirError) return err;
    throw err;
  }
  throw new Error(`accepted: ${xml}`);
}

function expectRefused(xml: string, code: string, diagnostics: RegExp, expression?: string): void {
  const err = refusal(xml);
  expect(err.status, xml).toBe(400);
  expect(err.code, xml).toBe(code);
  expect(err.outcome.resourceType).toBe('OperationOutcome');
  expect(err.outcome.issue.map((i) => i.diagnostics).join(' | '), xml).toMatch(diagnostics);
  if (expression) expect(err.outcome.issue.flatMap((i) => i.expression ?? []), xml).toContain(expression);
}

/**
 * Published examples that do not survive JSON → XML → JSON unchanged. Empty: the three
 * `fhir@4.12.0` defects the examples hit are worked around in src/fhir/xml (narrative re-serialised
 * by xml-js, exponent decimals written as "1e-22", `_x`-only primitive repeats dropped on write) and
 * ExampleScenario's own `resourceType` element is accounted for. Kept as a list so a future converter
 * or example change shows up here, named, instead of as a count.
 */
const ROUND_TRIP_EXCEPTIONS: readonly string[] = [];

describe('JSON → XML → JSON round trip of every hl7.fhir.r4.examples resource', () => {
  it('is lossless for all 5300 examples (deep-equal)', { timeout: 600_000 }, () => {
    const files = exampleFiles();
    expect(files.length).toBeGreaterThan(5300);
    const failures: string[] = [];
    for (const file of files) {
      const json = JSON.parse(readFileSync(join(EXAMPLES_DIR, file), 'utf8')) as object;
      try {
        const xml = resourceToXml(json);
        if (!isDeepStrictEqual(xmlToResource(xml), json)) failures.push(`${file}: differs after the round trip`);
      } catch (err) {
        failures.push(`${file}: ${(err as Error).message.slice(0, 200)}`);
      }
    }
    expect(failures).toEqual([...ROUND_TRIP_EXCEPTIONS]);
  });
});

describe('resourceToXml', () => {
  it('writes FHIR XML in definition order with value attributes, id/url attributes and the narrative verbatim', () => {
    const div = `<div ${XHTML}>\n  <p>Peter &amp; <b>James</b> &quot;Jim&quot;</p>\n  <pre> a  b </pre>\n</div>`;
    const xml = resourceToXml({
      resourceType: 'Patient',
      id: 'p1',
      active: true,
      name: [{ id: 'n1', family: 'Chalmers', given: ['Peter', 'James'], _given: [null, { extension: [{ url: 'http://x/e', valueString: 'x' }] }] }],
      text: { status: 'generated', div },
    });
    expect(xml).toBe(
      `<?xml version="1.0" encoding="UTF-8"?><Patient ${NS}><id value="p1"/><text><status value="generated"/>${div}</text><active value="true"/>` +
        '<name id="n1"><family value="Chalmers"/><given value="Peter"/><given value="James"><extension url="http://x/e"><valueString value="x"/></extension></given></name></Patient>',
    );
  });

  it('escapes markup and line breaks in values', () => {
    const xml = resourceToXml({ resourceType: 'Patient', name: [{ text: 'a < b & "c"\nd' }] });
    expect(xml).toContain('<text value="a &lt; b &amp; &quot;c&quot;&#xA;d"/>');
    expect((xmlToResource(xml) as Patient).name?.[0].text).toBe('a < b & "c"\nd');
  });

  it('writes decimals JavaScript prints with an exponent as plain decimals', () => {
    expect(plainDecimal(1e-22)).toBe('0.0000000000000000000001');
    expect(plainDecimal(-1.5e21)).toBe('-1500000000000000000000');
    expect(plainDecimal(1.25e-7)).toBe('0.000000125');
    expect(plainDecimal(12.5)).toBe('12.5');
    const xml = resourceToXml({ resourceType: 'Observation', status: 'final', code: { text: 'x' }, valueQuantity: { value: 1e-22 } });
    expect(xml).toContain('<value value="0.0000000000000000000001"/>');
  });

  it('refuses to embed a narrative that is not well-formed XHTML (406, ask for JSON)', () => {
    expect(() => resourceToXml({ resourceType: 'Patient', text: { status: 'generated', div: `<div ${XHTML}><br></div>` } })).toThrow(
      expect.objectContaining({ status: 406, code: 'CLARION_NOT_REPRESENTABLE_AS_XML' }),
    );
    expect(() => resourceToXml({ resourceType: 'Patient', text: { status: 'generated', div: `<div ${XHTML}><br></div>` } })).toThrow(/not well-formed XHTML/);
    expect(() => resourceToXml({ resourceType: 'Patient', text: { status: 'generated', div: `<div ${XHTML}>a&nbsp;b</div>` } })).toThrow(/undefined entity/);
  });

  it('writes R4B SubscriptionStatus (R4B/R5 notifications) and reads it back', () => {
    const status = {
      resourceType: 'SubscriptionStatus',
      id: 's1',
      status: 'active',
      type: 'event-notification',
      eventsSinceSubscriptionStart: '2',
      notificationEvent: [{ eventNumber: '2', focus: { reference: 'Encounter/e1' } }],
      subscription: { reference: 'Subscription/1' },
      topic: 'http://hl7.org/SubscriptionTopic/admission',
    };
    const bundle = { resourceType: 'Bundle', type: 'history', entry: [{ fullUrl: 'urn:uuid:1', resource: status, request: { method: 'GET', url: 'Subscription/1/$status' }, response: { status: '200' } }] };
    const xml = resourceToXml(bundle);
    expect(xml).toContain('<resource><SubscriptionStatus><id value="s1"/><status value="active"/><type value="event-notification"/>');
    expect(xmlToResource(xml)).toEqual(bundle);
  });

  it('jsonToXml converts JSON text (for channels holding the JSON rendering)', () => {
    expect(jsonToXml('{"resourceType":"Patient","active":false}')).toBe(`<?xml version="1.0" encoding="UTF-8"?><Patient ${NS}><active value="false"/></Patient>`);
  });

  it('isXmlMediaType', () => {
    for (const t of ['application/fhir+xml', 'application/xml', 'text/xml', 'Application/FHIR+XML; fhirVersion=4.0']) expect(isXmlMediaType(t), t).toBe(true);
    for (const t of ['application/fhir+json', 'application/json', 'text/plain; attach=application/fhir+xml']) expect(isXmlMediaType(t), t).toBe(false);
  });
});

describe('xmlToResource: accepted input', () => {
  it('reads decimals as numbers, primitive extensions on some repeats, extension-only repeats and contained resources', () => {
    const xml = `<?xml version="1.0" encoding="UTF-8"?>
      <Observation ${NS}>
        <contained><Patient><id value="p"/><name><given value="a"/><given value="b"><extension url="u"><valueCode value="c"/></extension></given></name></Patient></contained>
        <status value="final"/>
        <code><text value="weight"/></code>
        <subject><reference value="#p"/></subject>
        <valueQuantity><value value="72.50"/><unit value="kg"/></valueQuantity>
      </Observation>`;
    expect(xmlToResource(xml)).toEqual({
      resourceType: 'Observation',
      contained: [{ resourceType: 'Patient', id: 'p', name: [{ given: ['a', 'b'], _given: [null, { extension: [{ url: 'u', valueCode: 'c' }] }] }] }],
      status: 'final',
      code: { text: 'weight' },
      subject: { reference: '#p' },
      valueQuantity: { value: 72.5, unit: 'kg' },
    });
    const timing = xmlToResource(`<ActivityDefinition ${NS}><status value="draft"/><timingTiming><event><extension url="u"><valueString value="now"/></extension></event></timingTiming></ActivityDefinition>`);
    expect(timing).toEqual({ resourceType: 'ActivityDefinition', status: 'draft', timingTiming: { _event: [{ extension: [{ url: 'u', valueString: 'now' }] }] } });
  });

  it('drops comments, ignores prefixed attributes (xsi:schemaLocation) and a byte order mark', () => {
    const xml = `\uFEFF<?xml version="1.0"?><!-- header --><Patient ${NS} xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir fhir.xsd">
      <!-- the id --><id value="x"/><!-- flag --><active value="true"/><name><!-- n --><family value="F"/></name></Patient>`;
    expect(xmlToResource(xml)).toEqual({ resourceType: 'Patient', id: 'x', active: true, name: [{ family: 'F' }] });
  });

  it('keeps the narrative exactly as written (whitespace, entities, CDATA-free XHTML)', () => {
    const div = `<div ${XHTML}>\r\n  <p class="x">a &lt; b&#160;&amp; &quot;c&quot;</p>\n  <pre>  x\n\n  y </pre> <div><br/></div>\n</div>`;
    const r = xmlToResource(`<Patient ${NS}><text><status value="generated"/>${div}</text></Patient>`) as Patient;
    expect(r.text?.div).toBe(div);
  });

  it('accepts elements out of definition order (a known leniency: the converter reads by name)', () => {
    expect(xmlToResource(`<Patient ${NS}><gender value="male"/><active value="true"/></Patient>`)).toEqual({ resourceType: 'Patient', active: true, gender: 'male' });
  });
});

describe('xmlToResource: malformed XML → 400 CLARION_INVALID_XML', () => {
  it.each([
    ['an unclosed tag', `<Patient ${NS}>\n  <name>\n    <family value="F"/>\n</Patient>`, /Expected closing tag 'name' .*\(line 4, column \d+\)/],
    ['not XML at all', '{"resourceType":"Patient"}', /char '\{' is not expected.*\(line 1, column 1\)/],
    ['plain text', 'hello', /line 1/],
    ['an empty body', '   ', /the body is empty/],
    ['a broken XHTML div', `<Patient ${NS}><text><status value="generated"/><div ${XHTML}><p>open</div></text></Patient>`, /Expected closing tag 'p'/],
    ['two root elements', `<Patient ${NS}/><Patient ${NS}/>`, /exactly one root element; found 2/],
    ['a DOCTYPE', `<!DOCTYPE Patient [<!ENTITY x "y">]><Patient ${NS}><name><family value="&x;"/></name></Patient>`, /DOCTYPE declaration is not allowed/],
    ['an HTML entity', `<Patient ${NS}><text><status value="generated"/><div ${XHTML}>a&nbsp;b</div></text></Patient>`, /undefined entity '&nbsp;'.*line 1, column \d+/],
    ['a repeated attribute', `<Patient ${NS}><active value="true" value="false"/></Patient>`, /Attribute 'value' is repeated/],
  ])('%s', (_label, xml, diagnostics) => {
    expectRefused(xml, 'CLARION_INVALID_XML', diagnostics);
  });
});

describe('xmlToResource: not a FHIR resource → 400 CLARION_NOT_A_RESOURCE', () => {
  it.each([
    ['an unknown root', `<Foo ${NS}><active value="true"/></Foo>`, /<Foo> is not a FHIR resource type/],
    ['a data type as root', `<HumanName ${NS}><family value="F"/></HumanName>`, /<HumanName> is not a FHIR resource type/],
    ['an abstract type as root', `<DomainResource ${NS}/>`, /<DomainResource> is not a FHIR resource type/],
    ['no FHIR namespace', '<Patient><active value="true"/></Patient>', /not in the FHIR namespace/],
    ['another namespace', '<Patient xmlns="urn:other"><active value="true"/></Patient>', /not in the FHIR namespace/],
    ['a prefixed FHIR root', '<f:Patient xmlns:f="http://hl7.org/fhir"><f:active value="true"/></f:Patient>', /not in the FHIR namespace/],
  ])('%s', (_label, xml, diagnostics) => {
    expectRefused(xml, 'CLARION_NOT_A_RESOURCE', diagnostics);
  });
});

describe('xmlToResource: content the converter would drop silently → 400 CLARION_INVALID_FHIR_XML', () => {
  it.each([
    ['an unknown element', `<Patient ${NS}><active value="true"/><favouriteColour value="blue"/></Patient>`, /1 <favouriteColour> element\(s\) at Patient.favouriteColour, 0 understood/, 'Patient.favouriteColour'],
    ['an unknown nested element', `<Patient ${NS}><name><family value="F"/><nick value="x"/></name></Patient>`, /Patient.name.nick/, 'Patient.name.nick'],
    ['text content instead of a value attribute', `<Patient ${NS}><name><family>Smith</family></name></Patient>`, /text content 'Smith'; FHIR XML carries values in value attributes/, 'Patient.name.family'],
    ['a repeated single-valued element', `<Patient ${NS}><active value="true"/><active value="false"/></Patient>`, /2 <active> element\(s\) at Patient.active, 1 understood/, 'Patient.active'],
    ['an empty value attribute', `<Patient ${NS}><gender value=""/></Patient>`, /Patient.gender/, 'Patient.gender'],
    ['an element with neither value nor children', `<Patient ${NS}><name><given/></name></Patient>`, /Patient.name.given/, 'Patient.name.given'],
    ['an unknown attribute', `<Patient ${NS}><active value="true" certainty="high"/></Patient>`, /attribute 'certainty' of Patient.active/, 'Patient.active'],
    ['the resource id as an attribute', `<Patient ${NS} id="x"/>`, /attribute 'id' of Patient/, 'Patient'],
    ['an invalid boolean', `<Patient ${NS}><active value="yes"/></Patient>`, /Value should be a boolean but got: yes/, undefined],
    ['an invalid decimal', `<Observation ${NS}><status value="final"/><code><text value="x"/></code><valueQuantity><value value="1e3"/></valueQuantity></Observation>`, /decimal number but got: 1e3/, undefined],
    ['an element in another namespace', `<Patient ${NS}><active xmlns="urn:x" value="true"/></Patient>`, /element in namespace 'urn:x'/, 'Patient.active'],
    ['a prefixed element', `<Patient ${NS} xmlns:x="urn:x"><x:active value="true"/></Patient>`, /namespace prefixes on elements are not supported/, 'Patient.x:active'],
    ['a narrative div outside the XHTML namespace', `<Patient ${NS}><text><status value="generated"/><div><p>x</p></div></text></Patient>`, /must be in the XHTML namespace/, 'Patient.text.div'],
    ['an unknown resource inside a Bundle', `<Bundle ${NS}><type value="collection"/><entry><resource><Foo/></resource></entry></Bundle>`, /Unknown resource type: Foo/, undefined],
  ])('%s', (_label, xml, diagnostics, expression) => {
    expectRefused(xml, 'CLARION_INVALID_FHIR_XML', diagnostics, expression);
  });

  it('known limit: a repeat mixing values and extension-only items is refused, not misaligned', () => {
    // The reader would return given ["a","c"] with _given [null, {…}]: the extension moves to "c".
    const xml = `<Patient ${NS}><name><given value="a"/><given><extension url="u"><valueString value="x"/></extension></given><given value="c"/></name></Patient>`;
    expectRefused(xml, 'CLARION_INVALID_FHIR_XML', /3 <given> element\(s\) at Patient.name.given, 2 understood/, 'Patient.name.given');
    // Writing that shape works, so such a resource is still readable as JSON and sent as XML.
    const patient = { resourceType: 'Patient', name: [{ given: ['a', null, 'c'], _given: [null, { extension: [{ url: 'u', valueString: 'x' }] }, null] }] };
    expect(resourceToXml(patient)).toContain('<given value="a"/><given><extension url="u"><valueString value="x"/></extension></given><given value="c"/>');
  });

  it('reports every problem at once', () => {
    const err = refusal(`<Patient ${NS}><foo value="1"/><name><bar value="2"/></name></Patient>`);
    expect(err.outcome.issue.flatMap((i) => i.expression)).toEqual(expect.arrayContaining(['Patient.foo', 'Patient.name.bar']));
  });
});

describe('XML of a transaction Bundle', () => {
  it('reads entries, requests and nested resources', () => {
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [{ fullUrl: 'urn:uuid:0c3151bd-1cbf-4d64-b04d-cd9187a4c6e0', resource: { resourceType: 'Patient', name: [{ family: 'Doe' }] } as Patient, request: { method: 'POST', url: 'Patient' } }],
    };
    expect(xmlToResource(resourceToXml(bundle))).toEqual(bundle);
  });
});
