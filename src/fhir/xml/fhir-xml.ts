/**
 * FHIR XML ↔ FHIR JSON for resources (R4, plus R4B SubscriptionStatus for notifications), for the REST
 * layer and the notification renderers. Conversion is done by the `fhir` package (fhir-converter.ts);
 * reading XML is guarded because that converter alone accepts anything:
 *
 * 1. well-formedness (fast-xml-parser's validator) → CLARION_INVALID_XML with line and column; no
 *    DOCTYPE, no undefined entities;
 * 2. one root element, a FHIR resource type in the FHIR namespace → else CLARION_NOT_A_RESOURCE;
 * 3. no text content, foreign namespaces or prefixed elements → CLARION_INVALID_FHIR_XML;
 * 4. conversion; values the converter refuses (e.g. `<active value="yes"/>`) → CLARION_INVALID_FHIR_XML;
 * 5. every element and FHIR attribute of the document must be found in the result (counted per
 *    path): unknown elements, a repeated single-valued element, an empty value attribute or an
 *    element without value or children would otherwise be dropped silently → CLARION_INVALID_FHIR_XML.
 *
 * Not checked (known limits): the order of elements (the converter reads them in any order), the
 * content of the XHTML narrative beyond well-formedness and namespace, and XML comments (dropped).
 */
import type { Resource } from 'fhir/r4.js';
import { Errors, FhirError, fhirErrorFromIssues, type IssueInput } from '../errors.js';
import { fhirConverter } from './fhir-converter.js';
import { countJsonContent, normalizeConverted } from './json-accounting.js';
import { extractXmlDivs, restoreJsonDivs, restoreXmlDivs } from './narrative-xhtml.js';
import { prepareForWriting } from './write-preparation.js';
import { assertWellFormed, MAX_ISSUES, readXmlContent, type ContentCounts } from './xml-structure.js';

export const FHIR_XML_MEDIA_TYPE = 'application/fhir+xml';
export const FHIR_XML_CONTENT_TYPE = 'application/fhir+xml; charset=utf-8';

/** Media types that mean FHIR XML (lower case, without parameters). */
const XML_MEDIA_TYPES: ReadonlySet<string> = new Set(['application/fhir+xml', 'application/xml', 'text/xml', 'application/xml+fhir']);

/** Whether a MIME type (parameters allowed, e.g. `application/fhir+xml; fhirVersion=4.0`) is FHIR XML. */
export function isXmlMediaType(mimeType: string): boolean {
  return XML_MEDIA_TYPES.has(mimeType.split(';')[0].trim().toLowerCase());
}

/** A FHIR JSON resource (R4, or an R4B/R5 notification Bundle) as FHIR XML, with XML declaration. */
export function resourceToXml(resource: object): string {
  const { copy, divs } = prepareForWriting(resource);
  const xml = fhirConverter().toXml(copy);
  if (typeof xml !== 'string') throw new Error('resourceToXml: the value has no resourceType');
  return restoreXmlDivs(xml, divs);
}

/** FHIR JSON text → FHIR XML text (for channels that hold the JSON rendering, e.g. email attachments). */
export function jsonToXml(json: string): string {
  return resourceToXml(JSON.parse(json) as object);
}

/** FHIR XML text → FHIR JSON resource; every refusal is a 400 FhirError (see the module comment). */
export function xmlToResource(xml: string): Resource {
  const whole = xml.charCodeAt(0) === 0xfeff ? xml.slice(1) : xml;
  assertWellFormed(whole);
  const { text, divs } = extractXmlDivs(whole);
  const converter = fhirConverter();
  let parsed: ReturnType<typeof converter.parse>;
  try {
    parsed = converter.parse(text);
  } catch (err) {
    // Well-formed for the validator but not for the converter's strict parser (rare): still malformed.
    throw Errors.invalidXml({ message: (err as Error).message.replace(/\s+/g, ' ') });
  }
  const document = readXmlContent(parsed);
  if (!converter.isResourceType(document.root)) {
    throw Errors.notAResource({ reason: `the root element <${document.root}> is not a FHIR resource type` });
  }
  let converted: Record<string, unknown> | undefined;
  try {
    converted = converter.toObject(document.element);
  } catch (err) {
    if (err instanceof FhirError) throw err;
    // The converter throws plain Errors for values it cannot read (boolean, integer, decimal syntax, unknown nested resource type).
    throw Errors.invalidFhirXml({ reason: (err as Error).message });
  }
  if (!converted) throw Errors.invalidFhirXml({ reason: 'the converter found no resource' });
  const resource = normalizeConverted(converted);
  const lost = compareCounts(document.counts, countJsonContent(resource));
  if (lost.length > 0) throw fhirErrorFromIssues(Errors.invalidFhirXml, lost.slice(0, MAX_ISSUES));
  return restoreJsonDivs(resource, divs) as unknown as Resource;
}

/** One issue per path whose XML content is not (or not exactly) in the converted resource. */
function compareCounts(xml: ContentCounts, json: ContentCounts): IssueInput[] {
  const issues: IssueInput[] = [];
  for (const [key, inXml] of xml) {
    const inJson = json.get(key) ?? 0;
    if (inJson !== inXml) issues.push(issue(key, inXml, inJson));
  }
  for (const [key, inJson] of json) {
    // Defensive: the converter inventing content would be a converter bug worth refusing too.
    if (!xml.has(key)) issues.push(issue(key, 0, inJson));
  }
  return issues;
}

function issue(key: string, inXml: number, inJson: number): IssueInput {
  const at = key.indexOf('@');
  const path = at < 0 ? key : key.slice(0, at);
  const what =
    at >= 0
      ? `attribute '${key.slice(at + 1)}' of ${path} (${inXml} in the XML) not understood: empty, or not allowed on this element`
      : `${inXml} <${path.slice(path.lastIndexOf('.') + 1)}> element(s) at ${path}, ${inJson} understood: an element unknown here, a repeat of a single-valued element, or an element with neither value nor content`;
  return { diagnostics: `The XML body is not readable FHIR XML: ${what}`, expression: [path] };
}
