/**
 * The R4 base definitions indexed into @medplum/core's (process-global) schema, plus the expansions of
 * every ValueSet a `code` element is bound to with strength `required`. Built once, lazily, on first use
 * (~0.5 s): indexing at import time would slow down every CLI command and test that never validates.
 */
import { getDataType, indexStructureDefinitionBundle, tryGetDataType } from '@medplum/core';
import type { InternalSchemaElement, InternalTypeSchema } from '@medplum/core';
import type { Bundle, StructureDefinition } from 'fhir/r4.js';
import { loadDefinitionBundle } from './definitions.js';
import { expandValueSets } from './valuesets.js';

export type { InternalSchemaElement, InternalTypeSchema };

let requiredCodes: Map<string, ReadonlySet<string>> | undefined;

/** Indexes the R4 StructureDefinitions into @medplum/core once; later calls are free. */
export function ensureR4Schema(): void {
  if (requiredCodes) return;
  const urls = new Set<string>();
  for (const file of ['profiles-types.json', 'profiles-resources.json']) {
    const bundle = loadDefinitionBundle<Bundle<StructureDefinition>>(file);
    indexStructureDefinitionBundle(bundle);
    for (const entry of bundle.entry ?? []) {
      for (const el of entry.resource?.snapshot?.element ?? []) {
        const b = el.binding;
        if (b?.strength === 'required' && b.valueSet && el.type?.some((t) => t.code === 'code')) urls.add(b.valueSet);
      }
    }
  }
  requiredCodes = expandValueSets(urls);
}

/** The schema of a type (resource, data type or backbone element such as `PatientContact`), if known. */
export function typeSchema(name: string): InternalTypeSchema | undefined {
  ensureR4Schema();
  return tryGetDataType(name);
}

/** Like {@link typeSchema}, for types known to exist (throws otherwise). */
export function requireTypeSchema(name: string): InternalTypeSchema {
  ensureR4Schema();
  return getDataType(name);
}

/** Codes accepted by a required binding on a `code` element; undefined when it is not checked. */
export function requiredBindingCodes(el: InternalSchemaElement): ReadonlySet<string> | undefined {
  const b = el.binding;
  if (b?.strength !== 'required' || !b.valueSet) return undefined;
  ensureR4Schema();
  const bar = b.valueSet.indexOf('|');
  return requiredCodes?.get(bar < 0 ? b.valueSet : b.valueSet.slice(0, bar));
}

/**
 * The JSON property names an element is written as, with their types: `status`, or one per type of a
 * choice element (`value[x]` → `valueQuantity`, `valueString`, …). None for an element without a type.
 */
export function jsonProperties(key: string, element: InternalSchemaElement): { name: string; type: string }[] {
  if (!key.endsWith('[x]')) return element.type.length > 0 ? [{ name: key, type: element.type[0].code }] : [];
  const base = key.slice(0, -3);
  return element.type.map((t) => ({ name: base + t.code.charAt(0).toUpperCase() + t.code.slice(1), type: t.code }));
}

/** FHIR primitive types have lower-case names; `System.String` & co. are FHIRPath primitives. */
export function isPrimitiveType(code: string): boolean {
  return code.startsWith('http://hl7.org/fhirpath/') || (code[0] >= 'a' && code[0] <= 'z');
}
