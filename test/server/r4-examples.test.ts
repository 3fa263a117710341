/**
 * Acceptance: every resource of hl7.fhir.r4.examples@4.0.1 through the REST API of a real server —
 * valid examples accepted (PUT with their own id), read back identical apart from meta.versionId and
 * meta.lastUpdated, and found by `_id` and by one other search parameter built from their own data.
 * Exactly the known-invalid examples are rejected (400, with an expression naming the problem), and
 * the two query-based Subscriptions, which Clarion (topic-based Subscriptions only) refuses by design.
 * The loader and the report are shared with scripts/load-r4-examples.ts (test/support/r4-examples.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exampleFiles, EXPECTED_REJECTIONS, formatReport, KNOWN_INVALID, loadR4Examples, type LoadReport } from '../support/r4-examples.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { TEST_BACKEND } from '../support/test-db.js';
import { searchParamsFor } from '../../src/fhir/search/params.js';

/**
 * Accepted examples that no search parameter besides `_id` (and `_lastUpdated`, which the server sets)
 * can find — the justified exceptions to "found by _id and one other parameter":
 * types for which R4 defines no search parameter at all …
 */
const TYPES_WITHOUT_PARAMETERS = [
  'Binary',
  'BiologicallyDerivedProduct',
  'CatalogEntry',
  'MedicinalProductIngredient',
  'MedicinalProductManufactured',
  'ObservationDefinition',
  'OperationOutcome',
];
/** … and examples that leave the only parameter of their type empty (file → that parameter). */
const ONLY_PARAMETER_EMPTY: Readonly<Record<string, string>> = {
  'MedicinalProductContraindication-example.json': 'subject',
  'MedicinalProductIndication-example.json': 'subject',
  'MedicinalProductInteraction-example.json': 'subject',
  'MedicinalProductUndesirableEffect-example.json': 'subject',
  'SubstanceSpecification-example.json': 'code',
  'VerificationResult-example.json': 'target',
};
const ownParameters = (type: string) => [...searchParamsFor(type).keys()].filter((c) => !c.startsWith('_'));

describe(`R4 examples through the REST API (${TEST_BACKEND})`, () => {
  let server: TestServer;
  let report: LoadReport;

  beforeAll(async () => {
    // Bundle-resources.json is 35 MB: above the default 16 MiB body limit.
    server = await startTestServer({ bodyLimit: 64 * 1024 * 1024 });
  });
  afterAll(async () => {
    await server?.close();
  });

  it('loads every example', { timeout: 600_000 }, async () => {
    // Two search parameters per example, the least tested of its type first: ~800 of the ~1300
    // parameters that have values in the examples (scripts/load-r4-examples.ts --extra-params 100 tries all).
    report = await loadR4Examples({ baseUrl: server.baseUrl, concurrency: 8, extraParams: 1 });
    console.info(`[${TEST_BACKEND}] ${formatReport(report)}`);
    expect(report.files).toBe(exampleFiles().length);
    expect(report.files).toBeGreaterThan(5000);
    expect(report.accepted.length + report.rejected.length).toBe(report.files);
    // One Type/id is written by two files (both invalid, so nothing of it is stored).
    expect(report.duplicates).toEqual([{ key: 'ImplementationGuide/fhir', files: ['ImplementationGuide-fhir.json', 'ig-r4.json'] }]);
  });

  it('rejects exactly the known-invalid examples (and the query-based Subscriptions), with 400 and an expression naming the problem', () => {
    const sorted = (files: string[]) => [...files].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    expect(report.rejected.map((r) => r.file)).toEqual(sorted(Object.keys(EXPECTED_REJECTIONS)));
    for (const r of report.rejected) {
      expect({ file: r.file, status: r.status, code: r.code, expression: r.expression }).toEqual({
        file: r.file,
        status: 400,
        code: r.file in KNOWN_INVALID ? expect.stringMatching(/^CLARION_(VALIDATION_FAILED|INVALID_ID)$/) : 'CLARION_INVALID_SUBSCRIPTION',
        expression: EXPECTED_REJECTIONS[r.file],
      });
    }
  });

  it('reads back every accepted example identical, and finds it by _id and by another parameter', () => {
    expect(report.failures).toEqual([]);
  });

  it('has a second search parameter for every accepted example but the justified exceptions', () => {
    const exceptions = report.noSecondParam.map((x) => ({
      file: x.file,
      reason: TYPES_WITHOUT_PARAMETERS.includes(x.type)
        ? `R4 defines no search parameter for ${x.type}`
        : x.file in ONLY_PARAMETER_EMPTY
          ? `${x.type}'s only search parameter, ${ONLY_PARAMETER_EMPTY[x.file]}, has no value`
          : 'unexpected',
    }));
    console.info(`[${TEST_BACKEND}] no search parameter value besides _id:\n${exceptions.map((e) => `  ${e.file}: ${e.reason}`).join('\n')}`);
    expect(exceptions.filter((e) => e.reason === 'unexpected')).toEqual([]);
    // The reasons hold: those types really have no (other) parameter, and every listed file is seen.
    for (const t of TYPES_WITHOUT_PARAMETERS) expect(ownParameters(t), t).toEqual([]);
    for (const [file, code] of Object.entries(ONLY_PARAMETER_EMPTY)) {
      expect(ownParameters(file.split('-')[0]), file).toEqual([code]);
      expect(report.noSecondParam.map((x) => x.file), file).toContain(file);
    }
    expect(report.paramsTested.size).toBeGreaterThan(500);
  });
});
