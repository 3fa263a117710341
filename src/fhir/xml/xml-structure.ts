/**
 * What the converter cannot be trusted with: is the text well-formed XML, and what does the document
 * contain? The `fhir` converter turns some broken XML into an empty resource and silently drops what
 * it does not know, so well-formedness is checked first (fast-xml-parser's validator, which reports
 * line and column) and the content of the converter's own parse tree is counted per element path, to
 * be compared with what the conversion produced (json-accounting.ts).
 */
import { XMLValidator } from 'fast-xml-parser';
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

/** A node of the converter's own parse tree (xml-js, non-compact form). */
export interface XmlNode {
  type: string;
  name?: string;
  attributes?: Record<string, string>;
  elements?: XmlNode[];
  text?: string;
  cdata?: string;
}

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
 * Reads a well-formed document, as parsed by the converter: exactly one root element in the FHIR
 * namespace, no text content outside the XHTML narrative, no namespace prefixes on elements; counts
 * every element and FHIR attribute (value, id, url) by path. The narrative `div` counts as one element
 * (its XHTML content is carried as a string and not accounted for). Returns the root element too.
 */
export function readXmlContent(document: { elements?: XmlNode[] }): XmlDocumentContent & { element: XmlNode } {
  const nodes = document.elements ?? [];
  const roots = nodes.filter((n) => n.type === 'element');
  if (roots.length !== 1) throw Errors.invalidXml({ message: `a document has exactly one root element; found ${roots.length}` });
  const element = roots[0];
  const name = element.name ?? '';
  if (element.attributes?.xmlns !== FHIR_NAMESPACE) {
    throw Errors.notAResource({ reason: `the root element <${name}> is not in the FHIR namespace (xmlns="${FHIR_NAMESPACE}")` });
  }
  const counts: ContentCounts = new Map();
  const problems: IssueInput[] = [];
  walk(element, name, counts, problems);
  if (problems.length > 0) throw fhirErrorFromIssues(Errors.invalidFhirXml, problems.slice(0, MAX_ISSUES));
  return { root: name, counts, element };
}

export const MAX_ISSUES = 20;

function problem(problems: IssueInput[], path: string, what: string): void {
  problems.push({ diagnostics: `The XML body is not readable FHIR XML: ${path}: ${what}`, expression: [path] });
}

function walk(node: XmlNode, path: string, counts: ContentCounts, problems: IssueInput[]): void {
  countAt(counts, path);
  for (const attr in node.attributes) {
    if (attr === 'xmlns') {
      const ns = node.attributes[attr];
      if (ns !== FHIR_NAMESPACE) problem(problems, path, `element in namespace '${ns}'; FHIR elements are in ${FHIR_NAMESPACE}`);
    } else if (!attr.includes(':')) {
      countAt(counts, `${path}@${attr}`);
    }
    // Prefixed attributes (xmlns:xsi, xsi:schemaLocation, …) are not FHIR content and are ignored.
  }
  for (const child of node.elements ?? []) {
    if (child.type === 'text' || child.type === 'cdata') {
      const text = child.text ?? child.cdata ?? '';
      if (text.trim() !== '') problem(problems, path, `text content '${clip(text)}'; FHIR XML carries values in value attributes (<x value="…"/>)`);
      continue;
    }
    if (child.type !== 'element' || child.name === undefined) continue; // comments, processing instructions
    const childPath = `${path}.${child.name}`;
    if (child.name.includes(':')) {
      problem(problems, childPath, 'namespace prefixes on elements are not supported; use the default namespace');
    } else if (child.name === 'div') {
      // The narrative: kept as an XHTML string by the converter; only its namespace is checked here.
      if (child.attributes?.xmlns !== XHTML_NAMESPACE) problem(problems, childPath, `the narrative div must be in the XHTML namespace (xmlns="${XHTML_NAMESPACE}")`);
      countAt(counts, childPath);
    } else {
      walk(child, childPath, counts, problems);
    }
  }
}

function clip(text: string): string {
  const t = text.trim();
  return t.length > 40 ? `${t.slice(0, 40)}…` : t;
}
