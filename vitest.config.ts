import { defineConfig } from 'vitest/config';
import { STORAGE_INDEPENDENT_TESTS } from './test/storage-independent.js';

// The suite runs once per storage backend (CLARION_TEST_BACKEND). Tests that touch no storage run in
// the PGlite pass only (test/storage-independent.ts).
const onPostgres = process.env.CLARION_TEST_BACKEND === 'pg';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: onPostgres ? [...STORAGE_INDEPENDENT_TESTS, 'test/storage-independent.test.ts', '**/node_modules/**'] : ['**/node_modules/**'],
    // Each test file opens its own database (PGlite instance or PostgreSQL schema); two cores, so two forks.
    pool: 'forks',
    maxWorkers: 2,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
