/**
 * Reads a topic in any wire form Clarion accepts — R5 or R4B SubscriptionTopic JSON, or an R4 Basic
 * with cross-version extensions — into the neutral model. This is what the topic registry is given
 * for its files (the registry itself knows no wire form).
 */
import { Errors } from '../fhir/errors.js';
import type { SubscriptionTopic } from '../topics/topic-model.js';
import { topicFromBasic } from './r4/topic-from-basic.js';
import { R4B_FILTER_MODIFIERS, topicFromR4B } from './r4b/topic-from-r4b.js';
import { topicFromR5 } from './r5/topic-from-r5.js';
import { SEARCH_MODIFIERS } from '../topics/topic-rules.js';

export type TopicWireForm = 'r4-basic' | 'r4b' | 'r5';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Which wire form a topic resource is in. R4B and R5 SubscriptionTopic JSON differ (for topics) in
 * R5-only elements and in `canFilterBy`: R5 has `comparator`, R4B lists comparators (and `=`) under
 * `modifier`. A topic with none of these reads the same either way; it is taken as R5.
 */
export function topicWireForm(json: unknown): TopicWireForm {
  if (!isObj(json)) throw Errors.notATopic({ reason: 'expected a JSON object' });
  if (json.resourceType === 'Basic') return 'r4-basic';
  if (json.resourceType !== 'SubscriptionTopic') {
    throw Errors.notATopic({ reason: `resourceType is ${JSON.stringify(json.resourceType)}; expected SubscriptionTopic or Basic` }, ['resourceType']);
  }
  if (['name', 'versionAlgorithmString', 'versionAlgorithmCoding', 'copyrightLabel'].some((k) => k in json)) return 'r5';
  const filters = Array.isArray(json.canFilterBy) ? json.canFilterBy.filter(isObj) : [];
  if (filters.some((f) => 'comparator' in f)) return 'r5';
  const r4bOnly = R4B_FILTER_MODIFIERS.filter((c) => !SEARCH_MODIFIERS.includes(c));
  if (filters.some((f) => Array.isArray(f.modifier) && f.modifier.some((m) => r4bOnly.includes(m as string)))) return 'r4b';
  return 'r5';
}

/** Parses a topic resource in any accepted wire form (detected, or as `form` says). */
export function topicFromAnyForm(json: unknown, form: TopicWireForm = topicWireForm(json)): SubscriptionTopic {
  switch (form) {
    case 'r4-basic':
      return topicFromBasic(json);
    case 'r4b':
      return topicFromR4B(json);
    case 'r5':
      return topicFromR5(json);
  }
}
