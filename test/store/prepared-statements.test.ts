import { describe, expect, it } from 'vitest';
import { PreparedStatements } from '../../src/store/prepared-statements.js';

describe('PreparedStatements (which SQL runs as a named statement on PostgreSQL)', () => {
  it('names a text from its third use on, always with the same name', () => {
    const p = new PreparedStatements();
    const sql = 'SELECT * FROM resources WHERE id = $1';
    expect(p.nameFor(sql)).toBeUndefined();
    expect(p.nameFor(sql)).toBeUndefined();
    const name = p.nameFor(sql);
    expect(name).toMatch(/^clarion_[0-9a-f]{20}$/);
    expect(p.nameFor(sql)).toBe(name);
  });

  it('gives different texts different names', () => {
    const p = new PreparedStatements(1);
    expect(p.nameFor('SELECT $1::int')).not.toBe(p.nameFor('SELECT $1::text'));
  });

  it('names at most `capacity` texts; the rest run unnamed, the named ones stay named', () => {
    const p = new PreparedStatements(1, 2);
    const a = p.nameFor('a');
    const b = p.nameFor('b');
    expect(a && b).toBeTruthy();
    expect(p.nameFor('c')).toBeUndefined();
    expect(p.nameFor('c')).toBeUndefined();
    expect(p.nameFor('a')).toBe(a);
    expect(p.size).toBe(2);
  });

  it('keeps its use counts bounded: one-off texts (search shapes) start the count over', () => {
    const p = new PreparedStatements(2, 10, 3);
    for (const t of ['x', 'y', 'z']) p.nameFor(t);
    p.nameFor('w'); // the counts are full: they start over
    expect(p.nameFor('x')).toBeUndefined(); // x's earlier use was forgotten
    expect(p.nameFor('x')).toMatch(/^clarion_/);
  });
});
