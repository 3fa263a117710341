/**
 * The in-memory registry of the SubscriptionTopics this server supports, keyed by canonical url and
 * by `url|version`. It is filled from the built-in topics and a configurable directory of topic files
 * and changed live (add/remove, e.g. by the REST layer later); listeners hear of every change.
 *
 * The registry knows no wire form: it is given a parser (src/versions/topic-format.ts in production)
 * that turns a topic document (R5, R4B or R4 Basic JSON) into the neutral model.
 *
 * Lookup by url alone gives the latest version (R5 canonical resolution): versions are compared
 * segment by segment, numerically where both segments are numbers (`1.10.0` > `1.9.2`), and an
 * unversioned topic counts as older than any versioned one, a pre-release (`1.0.0-beta`) as older
 * than its release.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Errors } from '../fhir/errors.js';
import { BUILTIN_TOPICS, type TopicDocument } from './builtin/index.js';
import { parseCanonical, topicKey, type SubscriptionTopic } from './topic-model.js';
import { TopicIssues } from './topic-rules.js';

export type { TopicDocument };

export type TopicParser = (json: unknown) => SubscriptionTopic;

export interface TopicRegistryOptions {
  /** Turns a topic document (any accepted wire form) into the model; throws a FhirError when it is invalid. */
  parse: TopicParser;
  /** When given, topics naming a resource type for which this is false are rejected. */
  isSupportedResourceType?: (type: string) => boolean;
}

export type TopicChange = { kind: 'added' | 'replaced' | 'removed'; topic: SubscriptionTopic; source: string };
export type TopicListener = (change: TopicChange) => void;

interface Entry {
  topic: SubscriptionTopic;
  source: string;
}

export class TopicRegistry {
  private readonly byKey = new Map<string, Entry>();
  /** url → keys of its versions. */
  private readonly byUrl = new Map<string, Set<string>>();
  private readonly listeners = new Set<TopicListener>();

  constructor(private readonly options: TopicRegistryOptions) {}

  get size(): number {
    return this.byKey.size;
  }

  /** Parses and checks a topic document without registering it. */
  parse(doc: TopicDocument): SubscriptionTopic {
    const topic = this.options.parse(doc.json);
    this.checkResourceTypes(topic);
    return topic;
  }

  /**
   * Registers (or replaces) every topic of `docs`, all or nothing: if any document is invalid, or two
   * define the same `url|version`, nothing is registered. Returns the topics in document order.
   */
  loadDocuments(docs: readonly TopicDocument[]): SubscriptionTopic[] {
    const parsed: Entry[] = [];
    const seen = new Map<string, string>();
    for (const doc of docs) {
      const topic = this.parse(doc);
      const key = topicKey(topic.url, topic.version);
      const first = seen.get(key);
      if (first !== undefined) throw Errors.duplicateTopic({ key, first, second: doc.source });
      seen.set(key, doc.source);
      parsed.push({ topic, source: doc.source });
    }
    for (const e of parsed) this.add(e.topic, e.source);
    return parsed.map((e) => e.topic);
  }

  /**
   * Registers every topic in the `*.json` files of `dir` (not recursive; a file holds one topic
   * resource or a Bundle of them), all or nothing. Topics replace registered ones with the same
   * `url|version`, so a directory can override a built-in topic.
   */
  async loadDirectory(dir: string): Promise<SubscriptionTopic[]> {
    const files = (await readdir(dir, { withFileTypes: true }))
      .filter((d) => d.isFile() && d.name.endsWith('.json'))
      .map((d) => d.name)
      .sort();
    const docs: TopicDocument[] = [];
    for (const name of files) {
      const path = join(dir, name);
      let json: unknown;
      try {
        json = JSON.parse(await readFile(path, 'utf8'));
      } catch (err) {
        throw Errors.invalidTopic({ url: path, message: `the file is not valid JSON (${(err as Error).message})` });
      }
      docs.push(...documentsOf(json, path));
    }
    return this.loadDocuments(docs);
  }

  /** Registers a topic, replacing one with the same `url|version`. */
  add(topic: SubscriptionTopic, source = 'api'): 'added' | 'replaced' {
    this.checkResourceTypes(topic);
    const key = topicKey(topic.url, topic.version);
    const kind = this.byKey.has(key) ? 'replaced' : 'added';
    this.byKey.set(key, { topic, source });
    let keys = this.byUrl.get(topic.url);
    if (!keys) this.byUrl.set(topic.url, (keys = new Set()));
    keys.add(key);
    this.emit({ kind, topic, source });
    return kind;
  }

  /**
   * Removes the topic a canonical names: `url|version` removes that version, a bare `url` every
   * version. Returns the removed topics (empty when none matched).
   */
  remove(canonical: string): SubscriptionTopic[] {
    const { url, version } = parseCanonical(canonical);
    const keys = this.byUrl.get(url);
    if (!keys) return [];
    const victims = version === undefined ? [...keys] : [...keys].filter((k) => k === topicKey(url, version));
    const removed: Entry[] = [];
    for (const key of victims) {
      const e = this.byKey.get(key);
      if (!e) continue;
      this.byKey.delete(key);
      keys.delete(key);
      removed.push(e);
    }
    if (keys.size === 0) this.byUrl.delete(url);
    for (const e of removed) this.emit({ kind: 'removed', topic: e.topic, source: e.source });
    return removed.map((e) => e.topic);
  }

  /** The topic a canonical names (`url|version`, or `url` for its latest version), if registered. */
  get(canonical: string): SubscriptionTopic | undefined {
    const { url, version } = parseCanonical(canonical);
    if (version !== undefined) return this.byKey.get(topicKey(url, version))?.topic;
    const versions = this.versions(url);
    return versions[versions.length - 1];
  }

  /** Like `get`, throwing CLARION_TOPIC_NOT_FOUND when nothing is registered under the canonical. */
  require(canonical: string): SubscriptionTopic {
    const topic = this.get(canonical);
    if (!topic) throw Errors.topicNotFound({ url: canonical });
    return topic;
  }

  /** Every registered version of a url, oldest first. */
  versions(url: string): SubscriptionTopic[] {
    const keys = this.byUrl.get(url);
    if (!keys) return [];
    return [...keys].map((k) => this.byKey.get(k)!.topic).sort((a, b) => compareVersions(a.version, b.version));
  }

  /** Where a registered topic was loaded from (`builtin:…`, a file path, `api`). */
  sourceOf(canonical: string): string | undefined {
    const topic = this.get(canonical);
    return topic && this.byKey.get(topicKey(topic.url, topic.version))?.source;
  }

  /** The topics registered from `source` (e.g. `Basic/abc`, a file path). */
  bySource(source: string): SubscriptionTopic[] {
    return [...this.byKey.values()].filter((e) => e.source === source).map((e) => e.topic);
  }

  /** Removes exactly the topics registered from `source` (other versions of the same url stay). */
  removeBySource(source: string): SubscriptionTopic[] {
    const removed = this.bySource(source);
    for (const t of removed) {
      const key = topicKey(t.url, t.version);
      this.byKey.delete(key);
      const keys = this.byUrl.get(t.url);
      keys?.delete(key);
      if (keys?.size === 0) this.byUrl.delete(t.url);
    }
    for (const topic of removed) this.emit({ kind: 'removed', topic, source });
    return removed;
  }

  /** Every registered topic (all versions), ordered by url then version. */
  list(): SubscriptionTopic[] {
    return [...this.byUrl.keys()].sort().flatMap((url) => this.versions(url));
  }

  /** Calls `listener` on every later change; returns the function that unsubscribes it. */
  onChange(listener: TopicListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: TopicChange): void {
    for (const l of this.listeners) l(change);
  }

  private checkResourceTypes(topic: SubscriptionTopic): void {
    const supported = this.options.isSupportedResourceType;
    if (!supported) return;
    const issues = new TopicIssues();
    issues.url = topic.url;
    const check = (type: string | undefined, path: string) => {
      if (type !== undefined && !supported(type)) issues.add(path, `resource type '${type}' is not supported by this server`);
    };
    topic.resourceTriggers.forEach((t, i) => check(t.resource, `SubscriptionTopic.resourceTrigger[${i}].resource`));
    topic.eventTriggers.forEach((t, i) => check(t.resource, `SubscriptionTopic.eventTrigger[${i}].resource`));
    topic.canFilterBy.forEach((f, i) => check(f.resource, `SubscriptionTopic.canFilterBy[${i}].resource`));
    topic.notificationShape.forEach((s, i) => check(s.resource, `SubscriptionTopic.notificationShape[${i}].resource`));
    issues.throwIfAny();
  }
}

export interface CreateTopicRegistryOptions extends TopicRegistryOptions {
  /** Load the topics shipped with Clarion (src/topics/builtin); default true. */
  builtins?: boolean;
  /** A directory of topic files loaded after the built-ins (its topics replace built-ins with the same url|version). */
  directory?: string;
}

/** A registry holding the built-in topics and those of the configured directory. */
export async function createTopicRegistry(options: CreateTopicRegistryOptions): Promise<TopicRegistry> {
  const registry = new TopicRegistry(options);
  if (options.builtins !== false) registry.loadDocuments(BUILTIN_TOPICS);
  if (options.directory !== undefined) await registry.loadDirectory(options.directory);
  return registry;
}

/** The topic documents in one parsed file: the resource itself, or the resources of a Bundle. */
function documentsOf(json: unknown, path: string): TopicDocument[] {
  const o = json as { resourceType?: unknown; entry?: { resource?: unknown }[] };
  if (o && typeof o === 'object' && o.resourceType === 'Bundle') {
    return (Array.isArray(o.entry) ? o.entry : []).map((e, i) => ({ source: `${path}#entry[${i}]`, json: e?.resource }));
  }
  return [{ source: path, json }];
}

/** Orders versions: undefined first, then segment-wise, numeric segments numerically, pre-releases before releases. */
export function compareVersions(a: string | undefined, b: string | undefined): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  const pa = a.split(/([0-9]+)/).filter((s) => s !== '');
  const pb = b.split(/([0-9]+)/).filter((s) => s !== '');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i], pb[i]];
    const nx = /^[0-9]+$/.test(x) ? Number(x) : NaN;
    const ny = /^[0-9]+$/.test(y) ? Number(y) : NaN;
    const c = !Number.isNaN(nx) && !Number.isNaN(ny) ? nx - ny : x < y ? -1 : x > y ? 1 : 0;
    if (c !== 0) return c;
  }
  if (pa.length === pb.length) return 0;
  // `1.0.0-beta` is a pre-release of `1.0.0` (semver): a longer version continuing with '-' is older.
  const longerIsA = pa.length > pb.length;
  const next = (longerIsA ? pa : pb)[Math.min(pa.length, pb.length)];
  const longerIsOlder = next.startsWith('-');
  return (longerIsA ? 1 : -1) * (longerIsOlder ? -1 : 1);
}
