/**
 * Subscription matching throughput, in memory (no database): matches/s for one change that matches
 * exactly 1 subscription while S = 0, 100, 1,000, 100,000 others do not. Columns:
 *   indexed  — the S others have a selective filter (patient=Patient/other-i): candidates + matches
 *              on a precomputed search index; should stay flat as S grows;
 *   pipeline — the same plus what the consumer does per change: extract the search index and
 *              evaluate the topic's triggers;
 *   scan     — for contrast, the S others have only a non-selective filter (class:not=IMP), so they
 *              are on the scan list and are evaluated for every change (cost grows with S).
 * Every cell runs for about --seconds (default 1) and at least once.
 *
 *   npx tsx bench/matching.ts [--seconds 1]
 */
import { parseArgs } from 'node:util';
import type { Resource } from 'fhir/r4.js';
import { extractSearchIndex } from '../src/fhir/search/extract.js';
import { SubscriptionIndex, compileSubscriptionFilters } from '../src/subscriptions/subscription-index.js';
import type { SubscriptionFilter, SubscriptionSpec } from '../src/subscriptions/subscription-model.js';
import { BUILTIN_TOPICS } from '../src/topics/builtin/index.js';
import { compileTopic, evaluateTriggers } from '../src/topics/trigger-evaluator.js';
import { topicFromAnyForm } from '../src/versions/topic-format.js';

const { values } = parseArgs({ options: { seconds: { type: 'string', default: '1' } } });
const SECONDS = Number(values.seconds);
const SIZES = [0, 100, 1_000, 100_000];

const topic = compileTopic(topicFromAnyForm(BUILTIN_TOPICS.find((d) => d.source === 'builtin:encounter-complete.json')!.json));
const TYPES = topic.resourceTypes;

function spec(id: string, filters: SubscriptionFilter[]): SubscriptionSpec {
  return {
    id,
    topic: topic.url,
    status: 'active',
    filters,
    channel: { type: 'rest-hook', endpoint: 'https://example.org/hook', headers: [] },
    contentType: 'application/fhir+json',
    content: 'id-only',
    notificationVersion: 'R4',
  };
}

function build(S: number, other: (i: number) => SubscriptionFilter[]): SubscriptionIndex {
  const idx = new SubscriptionIndex();
  for (let i = 0; i < S; i++) {
    const s = spec(`n${i}`, other(i));
    idx.add(s, compileSubscriptionFilters(s.filters, TYPES));
  }
  const hit = spec('hit', [{ parameter: 'patient', value: 'Patient/target' }, { parameter: 'class', value: 'AMB' }]);
  idx.add(hit, compileSubscriptionFilters(hit.filters, TYPES));
  return idx;
}

const previous = { resourceType: 'Encounter', id: 'e1', status: 'in-progress', class: { code: 'AMB' }, subject: { reference: 'Patient/target' } } as Resource;
const current = { ...previous, status: 'finished', period: { start: '2024-01-01T10:00:00Z', end: '2024-01-01T11:00:00Z' } } as Resource;

/** Runs `once` (which returns the number of matched subscriptions) for about SECONDS; matches/s. */
function measure(once: () => number): number {
  const end = performance.now() + SECONDS * 1000;
  let n = 0;
  let matched = 0;
  const start = performance.now();
  do {
    matched += once();
    n++;
  } while (performance.now() < end);
  if (matched !== n) throw new Error(`expected exactly one match per change, got ${matched} in ${n}`);
  return n / ((performance.now() - start) / 1000);
}

const fmt = (x: number): string => Math.round(x).toLocaleString('en-US').padStart(10);
const rows: string[] = [];
const index = extractSearchIndex(current);
for (const S of SIZES) {
  const t0 = performance.now();
  const indexed = build(S, (i) => [{ parameter: 'patient', value: `Patient/other-${i}` }, { parameter: 'class', value: 'AMB' }]);
  const buildMs = performance.now() - t0;
  const lookup = (idx: SubscriptionIndex, ix = index): number => idx.candidates(topic.url, 'Encounter', ix).filter((id) => idx.matches(id, current, ix)).length;
  const indexedRate = measure(() => lookup(indexed));
  const pipelineRate = measure(() => {
    const ix = extractSearchIndex(current);
    const change = { resourceType: 'Encounter', interaction: 'update' as const, previous, current };
    if (!evaluateTriggers(topic, change, { currentIndex: ix })) return 0;
    return lookup(indexed, ix);
  });
  const scan = build(S, () => [{ parameter: 'class', modifier: 'not', value: 'AMB' }]);
  const scanRate = measure(() => lookup(scan));
  rows.push(`${String(S).padStart(8)} ${fmt(indexedRate)} ${fmt(pipelineRate)} ${fmt(scanRate)}   (built ${S} in ${Math.round(buildMs)} ms)`);
}
console.log(`matches/s (1 matching subscription + S non-matching; ~${SECONDS}s per cell)`);
console.log(`${'S'.padStart(8)} ${'indexed'.padStart(10)} ${'pipeline'.padStart(10)} ${'scan'.padStart(10)}`);
for (const r of rows) console.log(r);
