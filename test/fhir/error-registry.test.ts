import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseErrorTable } from '../../src/fhir/error-docs.js';
import { allErrorDefinitions, ERROR_CODE_SYSTEM, Errors, fhirErrorFromIssues } from '../../src/fhir/errors.js';
import { validateR4Resource } from '../../src/fhir/validation.js';

const docs = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
const rows = parseErrorTable(docs);
const regenerate = 'run `npx tsx scripts/gen-error-docs.ts` to regenerate docs/errors.md';

/**
 * Parameters for any factory: every property read yields a sample string, so each message template
 * can be rendered without knowing its parameter type.
 */
const anyParams = new Proxy({}, { get: (_t, key) => (typeof key === 'string' ? `sample-${key}` : undefined) });

describe('docs/errors.md and the error registry', () => {
  it('has a table', () => {
    expect(rows.length).toBeGreaterThan(0);
  });

  it('documents every registered code', () => {
    const documented = new Set(rows.map((r) => r.code));
    const missing = allErrorDefinitions().map((d) => d.code).filter((c) => !documented.has(c));
    expect(missing, regenerate).toEqual([]);
  });

  it('documents only registered codes, each once', () => {
    const registered = new Set(allErrorDefinitions().map((d) => d.code));
    expect(rows.map((r) => r.code).filter((c) => !registered.has(c)), regenerate).toEqual([]);
    expect(new Set(rows.map((r) => r.code)).size).toBe(rows.length);
  });

  it('agrees on status, issue type and description', () => {
    const byCode = new Map(rows.map((r) => [r.code, r]));
    const differing = allErrorDefinitions()
      .filter((d) => byCode.has(d.code))
      .map((d) => ({ code: d.code, registry: { status: d.status, issueType: d.issueType, description: d.description }, docs: byCode.get(d.code) }))
      .filter(({ registry, docs: r }) => r?.status !== registry.status || r.issueType !== registry.issueType || r.description !== registry.description);
    expect(differing, regenerate).toEqual([]);
  });
});

describe('error factories', () => {
  it.each(allErrorDefinitions().map((d) => [d.code, d] as const))('%s produces a valid OperationOutcome', (code, def) => {
    const err = (def as unknown as (p: unknown, e?: string[]) => ReturnType<typeof Errors.internal>)(anyParams, ['Patient.name[0]']);
    expect(err.code).toBe(code);
    expect(err.status).toBe(def.status);
    expect(err.status).toBeGreaterThanOrEqual(400);
    expect(err.status).toBeLessThan(600);
    const outcome = err.outcome;
    expect(outcome.issue).toHaveLength(1);
    expect(outcome.issue[0]).toMatchObject({
      severity: 'error',
      code: def.issueType,
      details: { coding: [{ system: ERROR_CODE_SYSTEM, code }] },
      expression: ['Patient.name[0]'],
    });
    expect(outcome.issue[0].diagnostics).toBeTruthy();
    expect(() => validateR4Resource(outcome, 'OperationOutcome')).not.toThrow();
  });

  it('fhirErrorFromIssues produces a valid OperationOutcome with one issue per problem', () => {
    const err = fhirErrorFromIssues(Errors.validationFailed, [
      { diagnostics: 'Patient.gender: bad', expression: ['Patient.gender'], code: 'code-invalid' },
      { diagnostics: 'no location', severity: 'warning' },
    ]);
    expect(err.status).toBe(400);
    expect(err.outcome.issue.map((i) => i.code)).toEqual(['code-invalid', 'invalid']);
    expect(() => validateR4Resource(err.outcome)).not.toThrow();
  });
});
