/**
 * Loads every resource of hl7.fhir.r4.examples@4.0.1 into a running Clarion server through the REST
 * API (PUT [type]/[id]) and reports what was accepted, rejected and why, whether each accepted
 * resource reads back identical and is found by _id and by another search parameter. The same code
 * runs in CI as test/server/r4-examples.test.ts (test/support/r4-examples.ts).
 *
 *   npx tsx scripts/load-r4-examples.ts [--base http://127.0.0.1:8080/fhir] [--concurrency 8] [--extra-params 0] [--only Patient-]
 *
 * Bundle-resources.json is 35 MB: start the server with `--body-limit 67108864` or it is refused (413).
 * Exit status 1 when an example is rejected that is not expected to be (EXPECTED_REJECTIONS), an
 * expected one is accepted, or a read-back or search check fails.
 */
import { parseArgs } from 'node:util';
import { EXPECTED_REJECTIONS, formatReport, loadR4Examples } from '../test/support/r4-examples.js';

const { values } = parseArgs({
  options: {
    base: { type: 'string', default: 'http://127.0.0.1:8080/fhir' },
    concurrency: { type: 'string', default: '8' },
    'extra-params': { type: 'string', default: '0' },
    only: { type: 'string' },
  },
});

const only = values.only;
let last = 0;
const report = await loadR4Examples({
  baseUrl: values.base,
  concurrency: Number(values.concurrency),
  extraParams: Number(values['extra-params']),
  filter: only ? (f) => f.startsWith(only) : undefined,
  onProgress: (done, total) => {
    if (done - last >= 500 || done === total) {
      last = done;
      process.stderr.write(`  ${done}/${total} written\n`);
    }
  },
});
console.log(formatReport(report));

const rejected = new Set(report.rejected.map((r) => r.file));
const unexpected = report.rejected.filter((r) => !(r.file in EXPECTED_REJECTIONS) || r.expression !== EXPECTED_REJECTIONS[r.file]);
const accepted = Object.keys(EXPECTED_REJECTIONS).filter((f) => report.accepted.includes(f) && !rejected.has(f));
if (unexpected.length) console.log(`unexpected rejections: ${unexpected.map((r) => r.file).join(', ')}`);
if (accepted.length) console.log(`known-invalid examples accepted: ${accepted.join(', ')}`);
process.exitCode = unexpected.length || accepted.length || report.failures.length ? 1 : 0;
