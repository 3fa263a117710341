import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { STORAGE_INDEPENDENT_TESTS, STORAGE_MARKERS } from './storage-independent.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return testFiles(path);
    return e.name.endsWith('.test.ts') ? [relative(ROOT, path)] : [];
  });
}

describe('the storage-independent test list (run on one backend only)', () => {
  const files = testFiles(join(ROOT, 'test'));
  const importsStorage = (file: string) => STORAGE_MARKERS.test(readFileSync(join(ROOT, file), 'utf8'));

  it('lists only existing files that import nothing storage-related', () => {
    for (const file of STORAGE_INDEPENDENT_TESTS) {
      expect(files, file).toContain(file);
      expect(importsStorage(file), file).toBe(false);
    }
  });

  it('lists every such file, so no storage-free test runs twice for nothing', () => {
    const unlisted = files.filter((f) => !importsStorage(f) && !STORAGE_INDEPENDENT_TESTS.includes(f) && f !== 'test/storage-independent.test.ts');
    expect(unlisted).toEqual([]);
  });
});
