/** One FHIRPath evaluation result with its FHIR data type (shared by the two evaluators). */
export interface TypedValue {
  type: string | undefined;
  /** The JSON value (object for complex types, primitive otherwise). */
  data: unknown;
  /** The FHIRPath path of the node (e.g. `Observation.component`); a base for relative expressions. */
  path: string | undefined;
}
