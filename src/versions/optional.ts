/** Helpers for building wire resources and models in which absent elements stay absent. */

/** `{ key: value }` when value is defined, `{}` otherwise. */
export function opt<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

/** `{ key: list }` when the list is non-empty, `{}` otherwise (FHIR JSON has no empty arrays). */
export function optList<K extends string, V>(key: K, list: readonly V[] | undefined): { [P in K]?: V[] } {
  return (list && list.length > 0 ? { [key]: [...list] } : {}) as { [P in K]?: V[] };
}
