/**
 * Rewrites the error-code table of docs/errors.md from the registry in src/fhir/errors.ts.
 * Usage: npx tsx scripts/gen-error-docs.ts
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { replaceErrorTable } from '../src/fhir/error-docs.js';
import { allErrorDefinitions } from '../src/fhir/errors.js';

const file = fileURLToPath(new URL('../docs/errors.md', import.meta.url));
const before = readFileSync(file, 'utf8');
const after = replaceErrorTable(before);
if (after !== before) writeFileSync(file, after);
console.log(`${file}: ${allErrorDefinitions().length} error codes${after === before ? ' (unchanged)' : ''}`);
