/**
 * What the converter cannot be trusted with: is the text well-formed XML, and what does the document
 * contain? The `fhir` converter turns broken XML into an empty resource and silently drops what it
 * does not know, so the XML is checked (fast-xml-parser) before conversion and its content is counted
 * per element path, to be compared with what the conversion produced (json-accounting.ts).
 */
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { Errors, fhirErrorFromIssues, type IssueInput } from '../errors.js';
import { undefinedEntity } from './narrative-xhtml.js';

export const FHIR_NAMESPACE = 'http://hl7.org/fhir';
export const XHTML_NAMESPACE = 'http://www.w3.org/1999/xhtml';

/** Occurrences per path: `Patient.name.given` (elements), `Patient.name.given@value` (attributes). */
export type ContentCounts = Map<string, number>;

export function countAt(counts: ContentCounts, key: string): void {
  counts.set(key, (counts.get(key) ?? 0) + 1);
}

export interface XmlDocumentContent {
  /** Name of the root element. */
  root: string;
  counts: ContentCounts;
}

/** A preserveOrder node: `{ name: children, ':@': attributes }` or `{ '#text': text }`. */
type XmlNode = Record<string, unknown>;

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  allowBooleanAttributes: false,
  parseTagValue: false,
  parseAttributeValue: false,
  trimValues: false,
  // Values are not used here (the converter reads them); entities only need to be well-formed.
  processEntities: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
});

/** Throws CLARION_INVALID_XML (400) with line and column when `xml` is not well-formed. */
export function assertWellFormed(xml: string): void {
  if (xml.trim() === '') throw Errors.invalidXml({ message: 'the body is empty' });
  const result = XMLValidator.validate(xml);
  if (result !== true) {
    const { msg, line, col } = result.err;
    throw Errors.invalidXml({ message: `${msg} (line ${line}${col !== undefined ? `, column ${col}` : ''})` });
  }
  // FHIR XML must not carry a DTD (FHIR spec, XML format); refusing it also rules out entity expansion.
  if (/<!DOCTYPE/i.test(xml)) throw Errors.invalidXml({ message: 'a DOCTYPE declaration is not allowed in FHIR XML' });
  // The validator accepts references to entities nothing defines (e.g. HTML's &nbsp;).
  const entity = undefinedEntity(xml);
  if (entity) throw Errors.invalidXml({ message: `undefined entity '${entity.entity}' (XML defines only &amp; &lt; &gt; &quot; &apos; and character references) (${lineAndColumn(xml, entity.index)})` });
}

function lineAndColumn(text: string, index: number): string {
  const before = text.slice(0, index);
  const line = before.split('\n').length;
  return `line ${line}, column ${index - before.lastIndexOf('\n')}`;
}

/**
 * Reads a well-formed document: exactly one root element in the FHIR namespace, no text content
 * outside the XHTML narrative, no namespace prefixes on elements; counts every element and FHIR
 * attribute (value, id, url) by path. The narrative `div` counts as one element (its XHTML content is
 * carried as a string and not accounted for).
 */
export function readXmlContent(xml: string): XmlDocumentContent {
  const nodes = parser.parse(xml) as XmlNode[];
  const roots = nodes.filter((n) => elementName(n) !== undefined);
  if (roots.length !== 1) throw Errors.invalidXml({ message: `a document has exactly one root element; found ${roots.length}` });
  const texts = nodes.filter((n) => typeof n['#text'] === 'string' && (n['#text'] as string).trim() !== '');
  if (texts.length > 0) throw Errors.invalidXml({ message: 'text outside the root element' });
  const root = roots[0];
  const name = elementName(root) as string;
  if (attributesOf(root).xmlns !== FHIR_NAMESPACE) {
    throw Errors.notAResource({ reason: `the root element <${name}> is not in the FHIR namespace (xmlns="${FHIR_NAMESPACE}")` });
  }
  const counts: ContentCounts = new Map();
  const problems: IssueInput[] = [];
  walk(root, name, name, counts, problems);
  if (problems.length > 0) throw fhirErrorFromIssues(Errors.invalidFhirXml, problems.slice(0, MAX_ISSUES));
  return { root: name, counts };
}

export const MAX_ISSUES = 20;

function elementName(node: XmlNode): string | undefined {
  for (const key of Object.keys(node)) if (key !== ':@' && key !== '#text') return key;
  return undefined;
}

function attributesOf(node: XmlNode): Record<string, string> {
  return (node[':@'] as Record<string, string> | undefined) ?? {};
}

function problem(problems: IssueInput[], path: string, what: string): void {
  problems.push({ diagnostics: `The XML body is not readable FHIR XML: ${path}: ${what}`, expression: [path] });
}

function walk(node: XmlNode, name: string, path: string, counts: ContentCounts, problems: IssueInput[]): void {
  countAt(counts, path);
  for (const [attr, value] of Object.entries(attributesOf(node))) {
    if (attr === 'xmlns') {
      if (value !== FHIR_NAMESPACE) problem(problems, path, `element in namespace '${value}'; FHIR elements are in ${FHIR_NAMESPACE}`);
    } else if (!attr.includes(':')) {
      countAt(counts, `${path}@${attr}`);
    }
    // Prefixed attributes (xmlns:xsi, xsi:schemaLocation, …) are not FHIR content and are ignored.
  }
  for (const child of node[name] as XmlNode[]) {
    if (typeof child['#text'] === 'string') {
      if (child['#text'].trim() !== '') problem(problems, path, `text content '${clip(child['#text'])}'; FHIR XML carries values in value attributes (<x value="…"/>)`);
      continue;
    }
    const childName = elementName(child);
    if (childName === undefined) continue;
    const childPath = `${path}.${childName}`;
    if (childName.includes(':')) {
      problem(problems, childPath, 'namespace prefixes on elements are not supported; use the default namespace');
    } else if (childName === 'div') {
      // The narrative: kept as an XHTML string by the converter; only its namespace is checked here.
      if (attributesOf(child).xmlns !== XHTML_NAMESPACE) problem(problems, childPath, `the narrative div must be in the XHTML namespace (xmlns="${XHTML_NAMESPACE}")`);
      countAt(counts, childPath);
    } else {
      walk(child, childName, childPath, counts, problems);
    }
  }
}

function clip(text: string): string {
  const t = text.trim();
  return t.length > 40 ? `${t.slice(0, 40)}…` : t;
}
