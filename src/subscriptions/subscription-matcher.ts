/**
 * The event writer's Matcher: topics (registry → compiled triggers, one current version per topic url)
 * plus the indexed subscription registry. For a change it evaluates each concerned topic's triggers
 * once, then looks up only the subscriptions indexed under the resource's own search keys (plus those
 * without a selective filter), so the cost does not grow with non-matching subscriptions.
 */
import type { Resource } from 'fhir/r4.js';
import { extractSearchIndex } from '../fhir/search/extract.js';
import type { SubscriptionTopic } from '../topics/topic-model.js';
import type { TopicRegistry } from '../topics/topic-registry.js';
import { additionalContext, compileTopic, evaluateTriggers, revIncludeQueries, type CompiledTopic } from '../topics/trigger-evaluator.js';
import type { Queryable } from '../store/db.js';
import type { RecentSearchIndexes } from '../store/recent-search-indexes.js';
import { findMatchingIds } from '../store/search-sql.js';
import type { EventMatch, MatchableChange, Matcher } from './event-model.js';
import type { SubscriptionSpec } from './subscription-model.js';
import { compileSubscriptionFilters, SubscriptionIndex } from './subscription-index.js';
import { pipelineChannelType } from './subscription-state.js';

export interface SubscriptionMatcherDeps {
  topics: TopicRegistry;
  /** Reads a topic carried by a resource (R4 Basic-wrapped); throws if it is not a valid topic. */
  topicFromResource(resource: Resource): SubscriptionTopic;
  onWarning?: (message: string, detail?: unknown) => void;
  /** Indexes the store extracted when it wrote a version (same process), reused instead of extracting again. */
  recentSearchIndexes?: RecentSearchIndexes;
}

const MATCHING_STATUSES = new Set(['active', 'error']);
/** Resources added per revInclude directive (a notification is not a bulk export). */
const MAX_REVINCLUDED = 50;

export class SubscriptionMatcher implements Matcher {
  private readonly index = new SubscriptionIndex();
  /** Subscriptions by id, including those not (yet) matching, so a topic change can re-index them. */
  private readonly specs = new Map<string, SubscriptionSpec>();
  private compiled = new Map<string, CompiledTopic>();
  private byType = new Map<string, CompiledTopic[]>();
  /** Resource types of topics that at least one matching subscription uses (others need no work). */
  private types = new Set<string>();
  /** Matching subscriptions per topic url. */
  private readonly usage = new Map<string, Set<string>>();

  constructor(private readonly deps: SubscriptionMatcherDeps) {
    this.recompileTopics();
    deps.topics.onChange(() => {
      this.recompileTopics();
      for (const spec of this.specs.values()) this.indexSubscription(spec);
    });
  }

  /** Subscriptions known (of any status): about the rows of subscription_state. */
  get subscriptionCount(): number {
    return this.specs.size;
  }

  triggerTypes(): ReadonlySet<string> {
    return this.types;
  }

  upsertSubscription(spec: SubscriptionSpec): void {
    this.specs.set(spec.id, spec);
    this.indexSubscription(spec);
  }

  removeSubscription(id: string): void {
    this.specs.delete(id);
    this.unindex(id);
  }

  topicResourceChanged(resource: Resource | undefined, id: string): void {
    const source = `Basic/${id}`;
    if (!resource) {
      this.deps.topics.removeBySource(source);
      return;
    }
    try {
      const topic = this.deps.topicFromResource(resource);
      this.deps.topics.removeBySource(source);
      this.deps.topics.add(topic, source);
    } catch (err) {
      // Validated at write time; an unreadable stored topic (e.g. older rules) is skipped, not fatal.
      this.deps.onWarning?.(`topic resource ${source} cannot be read; ignored`, err);
    }
  }

  clear(): void {
    for (const id of this.specs.keys()) this.unindex(id);
    this.specs.clear();
  }

  async match(change: MatchableChange, q: Queryable): Promise<EventMatch[]> {
    const focus = change.current ?? change.previous;
    const topics = this.byType.get(change.resourceType)?.filter((t) => (this.usage.get(t.url)?.size ?? 0) > 0);
    if (!focus || !topics || topics.length === 0) return [];
    // A delete's focus is the previous version, whose index was consumed (or dropped) long ago.
    const idx = change.currentIndex ?? (change.current && this.deps.recentSearchIndexes?.take(change.current)) ?? extractSearchIndex(focus);
    const out: EventMatch[] = [];
    for (const topic of topics) {
      const fired = evaluateTriggers(topic, {
        resourceType: change.resourceType,
        interaction: change.interaction,
        previous: change.previous,
        current: change.current,
      }, change.current ? { currentIndex: idx } : {});
      if (!fired) continue;
      let context: string[] | undefined;
      for (const id of this.index.candidates(topic.url, change.resourceType, idx)) {
        if (!this.index.matches(id, focus, idx)) continue;
        context ??= await this.context(topic, focus, idx, q);
        out.push({ subscriptionId: id, channelType: pipelineChannelType(this.specs.get(id)?.channel ?? { type: '' }), additionalContext: context });
      }
    }
    return out;
  }

  /**
   * Additional context from the topic's notificationShape: `include` from the focus's own references,
   * `revInclude` by searching (in the event writer's transaction) for resources that point at the focus.
   */
  private async context(topic: CompiledTopic, focus: Resource, idx: ReturnType<typeof extractSearchIndex>, q: Queryable): Promise<string[]> {
    const refs = new Set(additionalContext(topic, focus, idx).include);
    for (const query of revIncludeQueries(topic, focus)) {
      for (const id of await findMatchingIds(q, query, MAX_REVINCLUDED)) refs.add(`${query.resourceType}/${id}`);
    }
    return [...refs];
  }

  private unindex(id: string): void {
    this.index.remove(id);
    for (const [url, ids] of this.usage) {
      if (ids.delete(id) && ids.size === 0) {
        this.usage.delete(url);
        this.recomputeTypes();
      }
    }
  }

  private indexSubscription(spec: SubscriptionSpec): void {
    this.unindex(spec.id);
    if (!MATCHING_STATUSES.has(spec.status)) return;
    const topic = this.deps.topics.get(spec.topic);
    if (!topic) {
      this.deps.onWarning?.(`subscription ${spec.id}: topic ${spec.topic} is not known; it gets no events until the topic exists`);
      return;
    }
    try {
      const compiled = this.compiled.get(topic.url) ?? compileTopic(topic);
      this.index.add(spec, compileSubscriptionFilters(spec.filters, compiled.resourceTypes));
      let ids = this.usage.get(topic.url);
      if (!ids) this.usage.set(topic.url, (ids = new Set()));
      ids.add(spec.id);
      if (ids.size === 1) this.recomputeTypes();
    } catch (err) {
      this.deps.onWarning?.(`subscription ${spec.id}: filters cannot be compiled; it gets no events`, err);
    }
  }

  /** Trigger types of the topics in use. */
  private recomputeTypes(): void {
    const types = new Set<string>();
    for (const url of this.usage.keys()) for (const type of this.compiled.get(url)?.resourceTypes ?? []) types.add(type);
    this.types = types;
  }

  /** One compiled topic per url (the registry's current version of each). */
  private recompileTopics(): void {
    const compiled = new Map<string, CompiledTopic>();
    for (const t of this.deps.topics.list()) {
      if (compiled.has(t.url)) continue;
      const current = this.deps.topics.get(t.url);
      if (current) compiled.set(t.url, compileTopic(current));
    }
    const byType = new Map<string, CompiledTopic[]>();
    for (const c of compiled.values()) {
      for (const type of c.resourceTypes) {
        let list = byType.get(type);
        if (!list) byType.set(type, (list = []));
        list.push(c);
      }
    }
    this.compiled = compiled;
    this.byType = byType;
    this.recomputeTypes();
  }
}
