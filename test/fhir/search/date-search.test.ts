import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../../src/store/db.js';
import { openTestDb } from '../../support/test-db.js';
import { all } from './fixtures.js';
import { ids, insertResources } from './search-helpers.js';

let db: Db;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  ({ db, cleanup } = await openTestDb());
  await insertResources(db, all);
});
afterAll(async () => cleanup());

const sorted = async (type: string, q: string) => (await ids(db, type, q)).sort();

describe('date search (p1 1980-05-12, p2 1992, p3 2001-12-31)', () => {
  it('eq uses the implicit precision ranges of both sides', async () => {
    expect(await sorted('Patient', 'birthdate=1980')).toEqual(['p1']);
    expect(await sorted('Patient', 'birthdate=1980-05')).toEqual(['p1']);
    expect(await sorted('Patient', 'birthdate=1980-05-12')).toEqual(['p1']);
    expect(await sorted('Patient', 'birthdate=eq1980-05-13')).toEqual([]);
    // p2 is "1992" (a whole year): a single day does not contain it
    expect(await sorted('Patient', 'birthdate=1992-06-01')).toEqual([]);
    expect(await sorted('Patient', 'birthdate=1992')).toEqual(['p2']);
  });

  it('ne, gt, lt, ge, le', async () => {
    expect(await sorted('Patient', 'birthdate=ne1980')).toEqual(['p2', 'p3']);
    expect(await sorted('Patient', 'birthdate=gt1992')).toEqual(['p3']);
    expect(await sorted('Patient', 'birthdate=ge1992')).toEqual(['p2', 'p3']);
    expect(await sorted('Patient', 'birthdate=lt1992')).toEqual(['p1']);
    expect(await sorted('Patient', 'birthdate=le1992')).toEqual(['p1', 'p2']);
    expect(await sorted('Patient', 'birthdate=gt1980-05-12&birthdate=lt2001-12-31')).toEqual(['p2']);
  });

  it('sa, eb and ap', async () => {
    expect(await sorted('Patient', 'birthdate=sa1991-12-31')).toEqual(['p2', 'p3']);
    expect(await sorted('Patient', 'birthdate=eb1992-06-01')).toEqual(['p1']);
    expect(await sorted('Patient', 'birthdate=ap1980-05-10')).toEqual(['p1']);
  });

  it('handles dateTimes with time zones and Periods', async () => {
    expect(await sorted('Observation', 'date=2023-06-15')).toEqual(['o-bp']);
    expect(await sorted('Observation', 'date=2023-06-15T10:30:00%2B02:00')).toEqual(['o-bp']);
    expect(await sorted('Observation', 'date=2023-06-15T10:30:00+02:00')).toEqual(['o-bp']); // '+' decoded as space
    expect(await sorted('Observation', 'date=2023-06-15T03:30:00-05:00')).toEqual(['o-bp']);
    expect(await sorted('Observation', 'date=2023-06-15T08:31:00Z')).toEqual([]);
    expect(await sorted('Observation', 'date=2023-01')).toEqual(['o-weight']);
    expect(await sorted('Observation', 'date=2023-01-15')).toEqual([]);
    expect(await sorted('Observation', 'date=gt2023-01-15')).toEqual(['o-bp', 'o-temp', 'o-weight']);
    expect(await sorted('Observation', 'date=2024')).toEqual(['o-temp']);
    expect(await sorted('Observation', 'date:missing=true')).toEqual(['o-note', 'o-range']);
  });

  it('_lastUpdated with prefixes', async () => {
    expect(await sorted('Patient', '_lastUpdated=2024-01-02')).toEqual(['p2']);
    expect(await sorted('Patient', '_lastUpdated=gt2024-01-02')).toEqual(['p3', 'p4']);
    expect(await sorted('Patient', '_lastUpdated=ge2024-01-02T10:00:00Z')).toEqual(['p2', 'p3', 'p4']);
    expect(await sorted('Patient', '_lastUpdated=lt2024-01-02T10:00:00.000Z')).toEqual(['p1']);
  });
});
