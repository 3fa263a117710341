/** The topic registry: built-ins, a directory of topic files in every wire form, live add/remove, lookups by canonical. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FhirError } from '../../src/fhir/errors.js';
import { isR4ResourceType } from '../../src/fhir/definitions.js';
import { BUILTIN_TOPICS } from '../../src/topics/builtin/index.js';
import type { SubscriptionTopic } from '../../src/topics/topic-model.js';
import { compareVersions, createTopicRegistry, TopicRegistry, type TopicChange } from '../../src/topics/topic-registry.js';
import { topicFromAnyForm } from '../../src/versions/topic-format.js';
import { topicToBasic } from '../../src/versions/r4/topic-to-basic.js';
import { topicToR5 } from '../../src/versions/r5/topic-to-r5.js';
import { FIXTURES_DIR } from '../support/ig-validator.js';

const parse = (json: unknown) => topicFromAnyForm(json);
const topic = (url: string, version?: string, resource = 'Encounter'): SubscriptionTopic => ({
  url,
  ...(version ? { version } : {}),
  status: 'active',
  derivedFrom: [],
  resourceTriggers: [{ resource, supportedInteraction: ['create'] }],
  eventTriggers: [],
  canFilterBy: [],
  notificationShape: [],
});

const dirs: string[] = [];
function tempDir(files: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'clarion-topics-'));
  dirs.push(dir);
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), typeof content === 'string' ? content : JSON.stringify(content));
  return dir;
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

const fixture = (name: string) => JSON.parse(readFileSync(join(FIXTURES_DIR, 'topics', name), 'utf8'));

describe('createTopicRegistry', () => {
  it('loads the built-in topics', async () => {
    const reg = await createTopicRegistry({ parse });
    expect(reg.size).toBe(BUILTIN_TOPICS.length);
    expect(reg.get('http://hl7.org/SubscriptionTopic/admission')?.title).toBe('admission');
    expect(reg.get('http://hl7.org/SubscriptionTopic/admission|1.0.0')?.title).toBe('admission');
    expect(reg.sourceOf('http://hl7.org/SubscriptionTopic/admission')).toBe('builtin:admission.json');
  });

  it('loads a directory of R5, R4B and R4 Basic topics (and Bundles of them) after the built-ins', async () => {
    const dir = tempDir({
      'a-r4.json': fixture('subscriptions__r4__basic-subscriptiontopic-us-core-patient.json'),
      'b-r4b.json': fixture('subscriptions__r4b__subscriptiontopic-encounter-complete.json'),
      'c-bundle.json': { resourceType: 'Bundle', type: 'collection', entry: [{ resource: fixture('tests-r5__subscriptiontopic-encounter-create-interaction.json') }] },
      'notes.txt': 'ignored',
    });
    const reg = await createTopicRegistry({ parse, directory: dir });
    expect(reg.size).toBe(BUILTIN_TOPICS.length + 3);
    expect(reg.sourceOf('http://hl7.org/fhir/us/core/SubscriptionTopic/patient-data-feed')).toBe(join(dir, 'a-r4.json'));
    expect(reg.sourceOf('http://example.org/FHIR/R5/SubscriptionTopic/encounter-create-interaction')).toBe(`${join(dir, 'c-bundle.json')}#entry[0]`);
    // encounter-complete now has the fixture's 1.0.0-fhir.r4b (a pre-release) and the built-in 1.0.0 (latest)
    expect(reg.versions('http://example.org/FHIR/SubscriptionTopic/encounter-complete').map((t) => t.version)).toEqual(['1.0.0-fhir.r4b', '1.0.0']);
    expect(reg.get('http://example.org/FHIR/SubscriptionTopic/encounter-complete')?.version).toBe('1.0.0');
  });

  it('lets a directory topic replace a built-in with the same url|version', async () => {
    const admission = parse(BUILTIN_TOPICS.find((d) => d.source === 'builtin:admission.json')!.json);
    const dir = tempDir({ 'admission.json': topicToBasic({ ...admission, title: 'local admission' }) });
    const reg = await createTopicRegistry({ parse, directory: dir });
    expect(reg.size).toBe(BUILTIN_TOPICS.length);
    expect(reg.get('http://hl7.org/SubscriptionTopic/admission')?.title).toBe('local admission');
  });

  it('rejects the whole directory when one file is invalid, naming the file or the element', async () => {
    const reg = await createTopicRegistry({ parse });
    const good = topicToR5(topic('https://t.test/good'));
    await expect(reg.loadDirectory(tempDir({ 'good.json': good, 'bad.json': '{ nope' }))).rejects.toThrow(/bad\.json: the file is not valid JSON|bad\.json.*not valid JSON/);
    await expect(reg.loadDirectory(tempDir({ 'good.json': good, 'bad.json': { resourceType: 'SubscriptionTopic', url: 'https://t.test/bad' } }))).rejects.toThrow(
      'SubscriptionTopic.status: is required',
    );
    expect(reg.get('https://t.test/good')).toBeUndefined();
  });

  it('rejects two files defining the same url|version', async () => {
    const reg = await createTopicRegistry({ parse, builtins: false });
    const t = topicToR5(topic('https://t.test/dup', '1'));
    const err = await reg.loadDirectory(tempDir({ 'a.json': t, 'b.json': topicToBasic(topic('https://t.test/dup', '1')) })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FhirError);
    expect((err as FhirError).code).toBe('CLARION_DUPLICATE_TOPIC');
    expect((err as FhirError).message).toMatch(/https:\/\/t\.test\/dup\|1 is defined twice: by .*a\.json and by .*b\.json/);
    expect(reg.size).toBe(0);
  });

  it('can reject topics on resource types the server does not store', async () => {
    const reg = await createTopicRegistry({ parse, isSupportedResourceType: isR4ResourceType });
    const err = (() => {
      try {
        reg.add(topic('https://t.test/r5-only', undefined, 'EncounterHistory'));
      } catch (e) {
        return e as FhirError;
      }
    })();
    expect(err?.code).toBe('CLARION_INVALID_TOPIC');
    expect(err?.issues[0].expression).toEqual(['SubscriptionTopic.resourceTrigger[0].resource']);
  });
});

describe('TopicRegistry live changes and lookups', () => {
  it('adds, replaces and removes topics, telling listeners', () => {
    const reg = new TopicRegistry({ parse });
    const changes: string[] = [];
    const stop = reg.onChange((c: TopicChange) => changes.push(`${c.kind} ${c.topic.url}|${c.topic.version ?? ''}`));
    expect(reg.add(topic('https://t.test/a', '1'))).toBe('added');
    expect(reg.add(topic('https://t.test/a', '2'))).toBe('added');
    expect(reg.add({ ...topic('https://t.test/a', '1'), title: 'again' })).toBe('replaced');
    expect(reg.get('https://t.test/a|1')?.title).toBe('again');
    expect(reg.remove('https://t.test/a|1').map((t) => t.version)).toEqual(['1']);
    expect(reg.get('https://t.test/a|1')).toBeUndefined();
    expect(reg.get('https://t.test/a')?.version).toBe('2');
    expect(reg.remove('https://t.test/nothing')).toEqual([]);
    stop();
    reg.add(topic('https://t.test/b'));
    expect(changes).toEqual(['added https://t.test/a|1', 'added https://t.test/a|2', 'replaced https://t.test/a|1', 'removed https://t.test/a|1']);
  });

  it('resolves a bare url to the latest version; removing the url removes every version', () => {
    const reg = new TopicRegistry({ parse });
    for (const v of ['1.10.0', '1.9.2', undefined, '1.2.0']) reg.add(topic('https://t.test/v', v));
    expect(reg.versions('https://t.test/v').map((t) => t.version)).toEqual([undefined, '1.2.0', '1.9.2', '1.10.0']);
    expect(reg.get('https://t.test/v')?.version).toBe('1.10.0');
    expect(reg.list()).toHaveLength(4);
    expect(reg.remove('https://t.test/v')).toHaveLength(4);
    expect(reg.size).toBe(0);
    expect(reg.list()).toEqual([]);
  });

  it('require throws CLARION_TOPIC_NOT_FOUND', () => {
    const reg = new TopicRegistry({ parse });
    expect(() => reg.require('https://t.test/none|2')).toThrow("No subscription topic 'https://t.test/none|2' is registered");
  });

  it('orders versions segment-wise', () => {
    expect(['2.0', '10.0', '1.0.0', '1.0.0-beta', '1.0.0.1', '1.0.0-fhir.r4'].sort(compareVersions)).toEqual(['1.0.0-beta', '1.0.0-fhir.r4', '1.0.0', '1.0.0.1', '2.0', '10.0']);
    expect(compareVersions(undefined, '0')).toBeLessThan(0);
    expect(compareVersions('0', undefined)).toBeGreaterThan(0);
  });
});
