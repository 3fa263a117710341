/**
 * R4 backport Subscription (IG 1.1.0 profile backport-subscription) ⇄ the neutral SubscriptionSpec.
 *
 * Reading reports every structural problem at once (CLARION_INVALID_SUBSCRIPTION, 400, one issue per
 * problem, each with the wire path): missing reason/criteria/channel.payload/payload-content, values
 * of the wrong type, R4 query criteria instead of a topic, unparseable filter strings, the `sms`
 * channel (undefined by the IG), and cross-version extensions standing in for backport elements.
 * Whether the server can honour what was asked is decided afterwards by the core rules
 * (src/subscriptions/subscription-rules.ts), which get the wire paths from here.
 *
 * Writing back keeps the client's resource as sent (header, payload, extensions, unknown elements) and
 * only sets the server-owned `status` and `error`; a fresh resource is built only without an original.
 */
import type { Extension, Subscription } from 'fhir/r4.js';
import { Errors, fhirErrorFromIssues, type IssueInput } from '../../fhir/errors.js';
import type { PayloadContent } from '../../notify/notification-model.js';
import type { SubscriptionFilter, SubscriptionSpec, SubscriptionStatus } from '../../subscriptions/subscription-model.js';
import type { SubscriptionLocations } from '../../subscriptions/subscription-rules.js';
import { formatFilter, parseFilterCriteria } from '../filter-criteria.js';
import { opt, optList } from '../optional.js';
import { BACKPORT_EXT, BACKPORT_REPRESENTED_ELEMENTS, subscriptionXverElement } from './subscription-extensions.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export const R4_STATUSES: readonly SubscriptionStatus[] = ['requested', 'active', 'error', 'off'];
/** Channel codes the IG defines behaviour for; `sms` is an R4 code the IG leaves undefined, so it is refused. */
export const R4_CHANNEL_TYPES = ['rest-hook', 'websocket', 'email', 'message'] as const;
const CONTENTS: readonly PayloadContent[] = ['empty', 'id-only', 'full-resource'];

export interface R4SubscriptionRead {
  spec: SubscriptionSpec;
  /** Wire paths of the spec's elements, for the core rules' messages. */
  locations: SubscriptionLocations;
}

/** The extensions of a primitive's `_element` / of an element, with their wire paths. */
function extensionsAt(holder: unknown, path: string, url: string): { ext: Obj; path: string }[] {
  const list = isObj(holder) && Array.isArray(holder.extension) ? holder.extension : [];
  return list.flatMap((e, i) => (isObj(e) && e.url === url ? [{ ext: e, path: `${path}.extension[${i}]` }] : []));
}

/** Walks the resource for cross-version Subscription extensions of elements the backport represents. */
function findXver(node: unknown, path: string, out: IssueInput[]): void {
  if (Array.isArray(node)) {
    node.forEach((v, i) => findXver(v, `${path}[${i}]`, out));
    return;
  }
  if (!isObj(node)) return;
  const element = subscriptionXverElement(node.url);
  if (element !== undefined && BACKPORT_REPRESENTED_ELEMENTS.has(element)) {
    out.push({
      diagnostics: `${path}: cross-version extension '${String(node.url)}' stands in for an element the Subscriptions Backport IG already represents on R4 (IG: cross-version extensions SHOULD NOT be used for them); use the R4 element or the backport extension instead`,
      expression: [path],
    });
  }
  for (const [k, v] of Object.entries(node)) {
    if (k === 'resourceType') continue;
    findXver(v, `${path}.${k.startsWith('_') ? k.slice(1) : k}`, out);
  }
}

/** Reads a simple extension's single value of `kind` (`valueUnsignedInt`); undefined + an issue when it is not that. */
function simpleValue(found: { ext: Obj; path: string }[], kind: string, check: (v: unknown) => boolean, what: string, issues: IssueInput[]): unknown {
  if (found.length === 0) return undefined;
  if (found.length > 1) {
    issues.push({ diagnostics: `${found[1].path}: the extension may appear only once (also at ${found[0].path})`, expression: [found[1].path] });
    return undefined;
  }
  const { ext, path } = found[0];
  const v = ext[kind];
  if (!check(v)) {
    const keys = Object.keys(ext).filter((k) => k.startsWith('value'));
    issues.push({ diagnostics: `${path}: expected ${kind} with ${what}, got ${keys.length ? `${keys.join(', ')} ${JSON.stringify(ext[keys[0]])}` : 'no value'}`, expression: [path] });
    return undefined;
  }
  return v;
}

const isUnsignedInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;
const isPositiveInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

/** `application/fhir+json; fhirVersion=4.3` → MIME type without fhirVersion, and the notification version. */
function readPayloadMime(payload: string): { contentType: string; fhirVersion?: string } {
  const [type, ...params] = payload.split(';').map((s) => s.trim());
  let fhirVersion: string | undefined;
  const kept: string[] = [];
  for (const p of params) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq > 0 && p.slice(0, eq).trim().toLowerCase() === 'fhirversion') fhirVersion = p.slice(eq + 1).trim().replace(/^"|"$/g, '');
    else kept.push(p);
  }
  return { contentType: [type, ...kept].join('; '), ...opt('fhirVersion', fhirVersion) };
}

/** FHIR version of notifications from the `fhirVersion` MIME parameter; undefined when Clarion knows no such version. */
function notificationVersionOf(fhirVersion: string | undefined): SubscriptionSpec['notificationVersion'] | undefined {
  if (fhirVersion === undefined) return 'R4';
  if (/^4\.0(\.\d+)?$/.test(fhirVersion)) return 'R4';
  if (/^4\.3(\.\d+)?$/.test(fhirVersion)) return 'R4B';
  if (/^5\.0(\.\d+)?$/.test(fhirVersion)) return 'R5';
  return undefined;
}

/** Reads an R4 backport Subscription; throws CLARION_INVALID_SUBSCRIPTION listing every structural problem. */
export function subscriptionFromR4(json: unknown): R4SubscriptionRead {
  const issues: IssueInput[] = [];
  const add = (path: string, message: string) => issues.push({ diagnostics: `${path}: ${message}`, expression: [path] });
  const r = isObj(json) ? json : {};
  if (r.resourceType !== 'Subscription') add('Subscription.resourceType', `expected Subscription, got ${JSON.stringify(r.resourceType)}`);
  findXver(r, 'Subscription', issues);

  if (typeof r.reason !== 'string' || r.reason.trim() === '') add('Subscription.reason', 'is required (1..1): say why the subscription is made');
  const status = r.status as SubscriptionStatus;
  if (!R4_STATUSES.includes(status)) add('Subscription.status', `is required; expected one of ${R4_STATUSES.join(', ')} (clients send requested or off)`);
  if (r.end !== undefined && (typeof r.end !== 'string' || Number.isNaN(Date.parse(r.end)))) add('Subscription.end', 'must be an instant, e.g. 2030-01-01T00:00:00Z');

  const criteria = r.criteria;
  if (typeof criteria !== 'string' || criteria.trim() === '') {
    add('Subscription.criteria', 'is required by the backport-subscription profile: the canonical URL of a subscription topic');
  } else if (criteria.includes('?') || !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(criteria)) {
    add('Subscription.criteria', `'${criteria}' is not a topic canonical URL; Clarion supports topic-based subscriptions only (criteria = topic URL, filters in the backport-filter-criteria extension on criteria)`);
  }
  const filters: SubscriptionFilter[] = [];
  for (const { ext, path } of extensionsAt(r._criteria, 'Subscription.criteria', BACKPORT_EXT.filterCriteria)) {
    if (typeof ext.valueString !== 'string') {
      add(path, 'backport-filter-criteria needs valueString, e.g. Encounter?patient=Patient/123');
      continue;
    }
    const parsed = parseFilterCriteria(ext.valueString, path);
    if ('error' in parsed) add(path, `filter '${ext.valueString}' ${parsed.error}`);
    else filters.push(...parsed.filters);
  }

  const channel = isObj(r.channel) ? r.channel : undefined;
  if (!channel) add('Subscription.channel', 'is required');
  const ch = channel ?? {};
  const type = ch.type;
  if (type === 'sms') add('Subscription.channel.type', `sms is not defined by the Subscriptions Backport IG; accepted: ${R4_CHANNEL_TYPES.join(', ')} (and custom channels via backport-channel-type)`);
  else if (channel && !(R4_CHANNEL_TYPES as readonly unknown[]).includes(type)) add('Subscription.channel.type', `is ${JSON.stringify(type)}; accepted: ${R4_CHANNEL_TYPES.join(', ')}`);
  const customFound = extensionsAt(ch._type, 'Subscription.channel.type', BACKPORT_EXT.channelType);
  const customCoding = simpleValue(customFound, 'valueCoding', (v) => isObj(v) && typeof v.code === 'string' && v.code !== '', 'a code (and a system)', issues) as
    | { system?: string; code: string }
    | undefined;
  if (ch.endpoint !== undefined && typeof ch.endpoint !== 'string') add('Subscription.channel.endpoint', 'must be a URL string');
  const headers = Array.isArray(ch.header) ? ch.header : ch.header === undefined ? [] : undefined;
  if (!headers || headers.some((h) => typeof h !== 'string')) add('Subscription.channel.header', "must be a list of 'Name: value' strings");
  const heartbeatPeriod = simpleValue(extensionsAt(ch, 'Subscription.channel', BACKPORT_EXT.heartbeatPeriod), 'valueUnsignedInt', isUnsignedInt, 'seconds (an integer ≥ 0)', issues);
  const timeout = simpleValue(extensionsAt(ch, 'Subscription.channel', BACKPORT_EXT.timeout), 'valueUnsignedInt', isUnsignedInt, 'seconds (an integer ≥ 0)', issues);
  const maxCount = simpleValue(extensionsAt(ch, 'Subscription.channel', BACKPORT_EXT.maxCount), 'valuePositiveInt', isPositiveInt, 'an integer ≥ 1', issues);

  const payload = ch.payload;
  let mime: { contentType: string; fhirVersion?: string } = { contentType: '' };
  if (typeof payload !== 'string' || payload.trim() === '') {
    if (channel) add('Subscription.channel.payload', 'is required by the backport-subscription profile: the MIME type of notifications, e.g. application/fhir+json');
  } else {
    mime = readPayloadMime(payload);
  }
  const contentFound = extensionsAt(ch._payload, 'Subscription.channel.payload', BACKPORT_EXT.payloadContent);
  let content: PayloadContent | undefined;
  if (contentFound.length === 0) {
    if (channel) add('Subscription.channel.payload', `needs the backport-payload-content extension (${BACKPORT_EXT.payloadContent}) with valueCode empty, id-only or full-resource`);
  } else {
    content = simpleValue(contentFound, 'valueCode', (v) => CONTENTS.includes(v as PayloadContent), `one of ${CONTENTS.join(', ')}`, issues) as PayloadContent | undefined;
  }

  if (issues.length > 0) throw fhirErrorFromIssues(Errors.invalidSubscription, issues);

  const notificationVersion = notificationVersionOf(mime.fhirVersion);
  if (!notificationVersion) {
    throw Errors.subscriptionPayloadUnsupported(
      { element: 'Subscription.channel.payload fhirVersion', value: mime.fhirVersion ?? '', reason: 'accepted: 4.0 (R4 notifications, the default), 4.3 (R4B notifications) and 5.0 (R5 notifications)' },
      ['Subscription.channel.payload'],
    );
  }
  const spec: SubscriptionSpec = {
    id: typeof r.id === 'string' ? r.id : '',
    topic: (criteria as string).trim(),
    status,
    ...opt('reason', r.reason as string),
    ...opt('end', r.end as string | undefined),
    filters,
    channel: {
      type: type as string,
      ...opt('custom', customCoding ? { ...opt('system', customCoding.system), code: customCoding.code } : undefined),
      ...opt('endpoint', ch.endpoint as string | undefined),
      headers: (headers ?? []) as string[],
      ...opt('heartbeatPeriod', heartbeatPeriod as number | undefined),
      ...opt('timeout', timeout as number | undefined),
      ...opt('maxCount', maxCount as number | undefined),
    },
    contentType: mime.contentType,
    content: content!,
    notificationVersion,
    ...opt('error', typeof r.error === 'string' ? r.error : undefined),
  };
  const locations: SubscriptionLocations = {
    topic: 'Subscription.criteria',
    status: 'Subscription.status',
    channelType: 'Subscription.channel.type',
    ...opt('customChannel', customFound[0]?.path),
    endpoint: 'Subscription.channel.endpoint',
    headers: 'Subscription.channel.header',
    contentType: 'Subscription.channel.payload',
    content: contentFound[0]?.path ?? 'Subscription.channel.payload',
  };
  return { spec, locations };
}

/**
 * The R4 wire form of `spec`. With `original` (the client's resource), that resource is returned as
 * sent with only the server-owned `status` and `error` (and the headers, which masking may change)
 * taken from the spec; without it a backport Subscription is built from the spec alone.
 */
export function subscriptionToR4(spec: SubscriptionSpec, original?: Subscription): Subscription {
  if (original) {
    const { error: _oldError, ...rest } = original;
    const channel = { ...original.channel };
    if (spec.channel.headers.length > 0) channel.header = [...spec.channel.headers];
    else delete channel.header;
    return { ...rest, status: spec.status, ...opt('error', spec.error), channel };
  }
  const channelExt: Extension[] = [
    ...(spec.channel.heartbeatPeriod !== undefined ? [{ url: BACKPORT_EXT.heartbeatPeriod, valueUnsignedInt: spec.channel.heartbeatPeriod }] : []),
    ...(spec.channel.timeout !== undefined ? [{ url: BACKPORT_EXT.timeout, valueUnsignedInt: spec.channel.timeout }] : []),
    ...(spec.channel.maxCount !== undefined ? [{ url: BACKPORT_EXT.maxCount, valuePositiveInt: spec.channel.maxCount }] : []),
  ];
  const custom = spec.channel.custom;
  const fhirVersion = spec.notificationVersion === 'R4B' ? '; fhirVersion=4.3' : spec.notificationVersion === 'R5' ? '; fhirVersion=5.0' : '';
  return {
    resourceType: 'Subscription',
    ...opt('id', spec.id || undefined),
    status: spec.status,
    ...opt('end', spec.end),
    reason: spec.reason ?? '',
    criteria: spec.topic,
    ...(spec.filters.length > 0 ? { _criteria: { extension: spec.filters.map((f) => ({ url: BACKPORT_EXT.filterCriteria, valueString: formatFilter(f) })) } } : {}),
    ...opt('error', spec.error),
    channel: {
      ...optList('extension', channelExt),
      type: spec.channel.type as NonNullable<Subscription['channel']>['type'],
      ...(custom ? { _type: { extension: [{ url: BACKPORT_EXT.channelType, valueCoding: { ...opt('system', custom.system), code: custom.code } }] } } : {}),
      ...opt('endpoint', spec.channel.endpoint),
      payload: `${spec.contentType}${fhirVersion}`,
      _payload: { extension: [{ url: BACKPORT_EXT.payloadContent, valueCode: spec.content }] },
      ...optList('header', spec.channel.headers),
    },
  };
}
