import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SubscriptionTopic } from '../../src/topics/topic-model.js';
import { IG_DIR } from '../support/ig-validator.js';
import { firstIssue } from '../support/server.js';
import { ADMISSION, ENCOUNTER_COMPLETE, EXT, startSubscriptionServer, subscription, withChannel, withFilters, type SubscriptionTestServer } from './subscription-support.js';

let s: SubscriptionTestServer;

beforeAll(async () => {
  s = await startSubscriptionServer();
  // A topic allowing a modifier the search engine does not implement (token :in).
  const topic: SubscriptionTopic = {
    url: 'https://test.example/topic/obs-in', status: 'active', derivedFrom: [], eventTriggers: [], notificationShape: [],
    resourceTriggers: [{ resource: 'Observation', supportedInteraction: ['create'] }],
    canFilterBy: [{ resource: 'Observation', filterParameter: 'code', comparator: [], modifier: ['in'] }],
  };
  s.services.topics.add(topic, 'test');
});
afterAll(async () => {
  await s?.close();
});

interface Expected {
  status: number;
  code?: string;
  expression: string;
  diagnostics: RegExp;
}

async function expectRejected(body: unknown, e: Expected, method: 'POST' | 'PUT' = 'POST', path = 'Subscription') {
  const res = await s.fhir(path, { method, body });
  expect(res.status, JSON.stringify(res.body)).toBe(e.status);
  expect(res.body.resourceType).toBe('OperationOutcome');
  const issues = res.body.issue as { expression?: string[]; diagnostics?: string; details?: any }[];
  const issue = issues.find((i) => i.expression?.includes(e.expression));
  expect(issue, `no issue at ${e.expression}: ${JSON.stringify(issues)}`).toBeTruthy();
  expect(issue!.diagnostics).toMatch(e.diagnostics);
  if (e.code) expect(firstIssue(res.body).clarionCode).toBe(e.code);
}

const without = (o: Record<string, any>, key: string) => {
  const { [key]: _drop, ...rest } = o;
  return rest;
};

describe('structural (400)', () => {
  it('missing reason', async () => {
    await expectRejected(without(subscription(), 'reason'), { status: 400, expression: 'Subscription.reason', diagnostics: /reason/ });
  });

  it('missing criteria', async () => {
    await expectRejected(without(subscription(), 'criteria'), { status: 400, expression: 'Subscription.criteria', diagnostics: /criteria/ });
  });

  it('criteria that is an R4 query instead of a topic canonical', async () => {
    await expectRejected(subscription({ criteria: 'Observation?code=1234-5' }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.criteria', diagnostics: /not a topic canonical URL.*topic-based subscriptions only/,
    });
  });

  it('missing channel.payload', async () => {
    const { payload: _p, ...channel } = subscription().channel;
    await expectRejected(subscription({ channel }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.payload', diagnostics: /required by the backport-subscription profile.*application\/fhir\+json/,
    });
  });

  it('missing backport-payload-content extension', async () => {
    await expectRejected(withChannel({ _payload: undefined }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.payload', diagnostics: /backport-payload-content.*empty, id-only or full-resource/,
    });
  });

  it('an unknown content code', async () => {
    await expectRejected(withChannel({ _payload: { extension: [{ url: EXT.content, valueCode: 'everything' }] } }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.payload.extension[0]', diagnostics: /expected valueCode with one of empty, id-only, full-resource/,
    });
  });

  it('R5 cross-version extension standing in for filterBy', async () => {
    const ext = { url: 'http://hl7.org/fhir/5.0/StructureDefinition/extension-Subscription.filterBy', extension: [{ url: 'filterParameter', valueString: 'patient' }] };
    await expectRejected(subscription({ extension: [ext] }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.extension[0]', diagnostics: /cross-version extension .*extension-Subscription\.filterBy.*already represents/,
    });
  });

  it('R4B cross-version extension standing in for content (on channel.payload)', async () => {
    const payloadExt = [{ url: EXT.content, valueCode: 'id-only' }, { url: 'http://hl7.org/fhir/4.3/StructureDefinition/extension-Subscription.content', valueCode: 'full-resource' }];
    await expectRejected(withChannel({ _payload: { extension: payloadExt } }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.payload.extension[1]', diagnostics: /extension-Subscription\.content/,
    });
  });

  it('sms channel', async () => {
    await expectRejected(withChannel({ type: 'sms', endpoint: 'tel:+15555550100' }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.type', diagnostics: /sms is not defined by the Subscriptions Backport IG; accepted: rest-hook, websocket, email, message/,
    });
  });

  it('malformed filter string', async () => {
    await expectRejected(withFilters(['Encounter?patient']), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.criteria.extension[0]', diagnostics: /'patient' is not of the form param\[:modifier\]=value/,
    });
    await expectRejected(withFilters(['encounter?patient=1']), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.criteria.extension[0]', diagnostics: /'encounter' before '\?' is not a resource type name/,
    });
  });

  it('filter extension without valueString', async () => {
    await expectRejected(subscription({ _criteria: { extension: [{ url: EXT.filter, valueCode: 'patient=Patient/1' }] } }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.criteria.extension[0]', diagnostics: /needs valueString/,
    });
  });

  it('channel extensions of the wrong type or range', async () => {
    await expectRejected(withChannel({ extension: [{ url: EXT.heartbeat, valueString: '60' }] }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.extension[0]', diagnostics: /expected valueUnsignedInt.*got valueString/,
    });
    await expectRejected(withChannel({ extension: [{ url: EXT.timeout, valueUnsignedInt: 5 }, { url: EXT.timeout, valueUnsignedInt: 6 }] }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.extension[1]', diagnostics: /may appear only once/,
    });
    await expectRejected(withChannel({ extension: [{ url: EXT.maxCount, valueInteger: 0 }] }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.extension[0]', diagnostics: /expected valuePositiveInt/,
    });
  });

  it('custom channel Coding without a code', async () => {
    await expectRejected(withChannel({ _type: { extension: [{ url: EXT.channelType, valueCoding: { system: 'http://example.org/x' } }] } }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.type.extension[0]', diagnostics: /expected valueCoding/,
    });
  });

  it('channel.header that cannot be sent', async () => {
    await expectRejected(withChannel({ header: ['Authorization: Bearer x', 'NoSeparator'] }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.header[1]', diagnostics: /not of the form 'Name: value'/,
    });
    await expectRejected(withChannel({ header: ['Content-Type: text/plain'] }), {
      status: 400, code: 'CLARION_INVALID_SUBSCRIPTION', expression: 'Subscription.channel.header[0]', diagnostics: /set by the server/,
    });
  });

  it('reports every structural problem at once', async () => {
    const { payload: _p, ...channel } = subscription().channel;
    const res = await s.fhir('Subscription', { method: 'POST', body: subscription({ criteria: 'Patient?name=x', channel: { ...channel, type: 'sms' } }) });
    expect(res.status).toBe(400);
    const where = res.body.issue.flatMap((i: any) => i.expression);
    expect(where).toEqual(expect.arrayContaining(['Subscription.criteria', 'Subscription.channel.type', 'Subscription.channel.payload']));
  });
});

describe('status (400)', () => {
  it.each(['active', 'error'])('client create with status %s', async (status) => {
    await expectRejected(subscription({ status }), {
      status: 400, code: 'CLARION_SUBSCRIPTION_STATUS', expression: 'Subscription.status', diagnostics: new RegExp(`'${status}' cannot be set by a client; accepted: requested, off$`),
    });
  });

  it('client update that changes status to active', async () => {
    const created = await s.fhir('Subscription', { method: 'POST', body: subscription() });
    expect(created.status).toBe(201);
    await expectRejected({ ...created.body, status: 'active' }, {
      status: 400, code: 'CLARION_SUBSCRIPTION_STATUS', expression: 'Subscription.status', diagnostics: /accepted: requested, off, or the current status 'requested' unchanged/,
    }, 'PUT', `Subscription/${created.body.id}`);
  });
});

describe('semantic (422)', () => {
  it('unknown topic', async () => {
    await expectRejected(subscription({ criteria: 'http://example.org/no-such-topic' }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_TOPIC_UNKNOWN', expression: 'Subscription.criteria', diagnostics: /not a topic supported by this server; supported topics: .*admission/,
    });
  });

  it('filter parameter the topic does not allow', async () => {
    await expectRejected(withFilters(['Encounter?patient=Patient/1', 'Encounter?status=finished']), {
      status: 422, code: 'CLARION_SUBSCRIPTION_FILTER', expression: 'Subscription.criteria.extension[1]', diagnostics: /does not allow filtering by 'status' on Encounter; accepted: Encounter.patient, Encounter.subject/,
    });
  });

  it('filter resource type that is not the topic\'s (the IG multi-resource example)', async () => {
    const ig = JSON.parse(readFileSync(join(IG_DIR, 'Subscription-subscription-multi-resource.json'), 'utf8'));
    await expectRejected({ ...ig, id: undefined, status: 'requested' }, {
      status: 422, code: 'CLARION_SUBSCRIPTION_FILTER', expression: 'Subscription.criteria.extension[0]', diagnostics: /Observation is not a resource type of topic http:\/\/hl7.org\/SubscriptionTopic\/admission; accepted: Encounter/,
    });
  });

  it('filter value that does not parse for the parameter', async () => {
    await expectRejected(withFilters(['length=abc'], { criteria: ENCOUNTER_COMPLETE }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_FILTER', expression: 'Subscription.criteria.extension[0]', diagnostics: /Value 'abc' of search parameter 'length' is invalid/,
    });
  });

  it('modifier the topic does not allow', async () => {
    await expectRejected(withFilters(['patient:missing=true']), {
      status: 422, code: 'CLARION_SUBSCRIPTION_FILTER', expression: 'Subscription.criteria.extension[0]', diagnostics: /does not allow modifier ':missing' on 'patient'; accepted: none/,
    });
  });

  it('modifier the topic allows but Clarion cannot evaluate', async () => {
    await expectRejected(withFilters(['Observation?code:in=http://example.org/vs'], { criteria: 'https://test.example/topic/obs-in' }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_FILTER', expression: 'Subscription.criteria.extension[0]', diagnostics: /Modifier ':in' is not supported on 'code:in'; accepted: missing, not, text, of-type/,
    });
  });

  it('comparator the topic does not allow', async () => {
    await expectRejected(withFilters(['length=ne5'], { criteria: ENCOUNTER_COMPLETE }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_FILTER', expression: 'Subscription.criteria.extension[0]', diagnostics: /does not allow comparator 'ne' on 'length'; accepted: eq, gt, lt, ge, le/,
    });
  });

  it('channel type with no implementation (email without --smtp-host)', async () => {
    await expectRejected(withChannel({ type: 'email', endpoint: 'mailto:a@example.org' }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_CHANNEL', expression: 'Subscription.channel.type', diagnostics: /Channel 'email' is not supported by this server; supported channels: message, rest-hook, websocket/,
    });
  });

  it('custom channel that is not registered (IG zulip example)', async () => {
    const ig = JSON.parse(readFileSync(join(IG_DIR, 'Subscription-subscription-zulip.json'), 'utf8'));
    await expectRejected({ ...ig, id: undefined, status: 'requested' }, {
      status: 422, code: 'CLARION_SUBSCRIPTION_CHANNEL', expression: 'Subscription.channel.type.extension[0]', diagnostics: /Channel 'http:\/\/example.org\/subscription-channel-type\|zulip' is not supported/,
    });
  });

  it.each([
    ['plain http', 'http://example.org/hook', /plain http is refused/],
    ['a loopback address', 'https://127.0.0.1/hook', /loopback, private/],
    ['a scheme other than https', 'ftp://example.org/hook', /scheme 'ftp:' is not allowed; use https/],
  ])('rest-hook endpoint: %s', async (_label, endpoint, why) => {
    await expectRejected(withChannel({ endpoint }), { status: 422, code: 'CLARION_SUBSCRIPTION_ENDPOINT', expression: 'Subscription.channel.endpoint', diagnostics: why });
  });

  it('rest-hook without endpoint', async () => {
    await expectRejected(withChannel({ endpoint: undefined }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_ENDPOINT', expression: 'Subscription.channel.endpoint', diagnostics: /needs channel.endpoint \(an https URL\)/,
    });
  });

  it.each([
    ['text/plain', /FHIR JSON or XML notifications only; accepted: application\/fhir\+json, application\/json, application\/fhir\+xml/],
    ['application/xml', /FHIR JSON or XML notifications only; accepted: application\/fhir\+json, application\/json, application\/fhir\+xml/],
  ])('payload MIME type %s', async (payload, why) => {
    await expectRejected(withChannel({ payload }), { status: 422, code: 'CLARION_SUBSCRIPTION_PAYLOAD', expression: 'Subscription.channel.payload', diagnostics: why });
  });

  it.each([
    ['3.0', /'3.0' is not supported: accepted: 4.0 .*, 4.3 .* and 5.0/],
  ])('payload fhirVersion=%s', async (v, why) => {
    await expectRejected(withChannel({ payload: `application/fhir+json; fhirVersion=${v}` }), {
      status: 422, code: 'CLARION_SUBSCRIPTION_PAYLOAD', expression: 'Subscription.channel.payload', diagnostics: why,
    });
  });
});

describe('every write path', () => {
  it('a transaction with an invalid Subscription fails as a whole and stores nothing', async () => {
    const bundle = {
      resourceType: 'Bundle', type: 'transaction',
      entry: [
        { fullUrl: 'urn:uuid:1', resource: { resourceType: 'Patient' }, request: { method: 'POST', url: 'Patient' } },
        { resource: subscription({ criteria: 'http://example.org/no-such-topic', reason: 'tx-probe' }), request: { method: 'POST', url: 'Subscription' } },
      ],
    };
    const res = await s.fhir('', { method: 'POST', body: bundle });
    expect(res.status).toBeGreaterThanOrEqual(400);
    expect(res.status).toBeLessThan(500);
    expect(JSON.stringify(res.body)).toContain('no-such-topic');
    const search = await s.fhir(`Subscription?topic=${encodeURIComponent('http://example.org/no-such-topic')}`);
    expect(search.body.entry ?? []).toEqual([]);
  });

  it('a topic is checked by canonical: url|version of a registered topic is accepted, an unknown version is not', async () => {
    const ok = await s.fhir('Subscription', { method: 'POST', body: subscription({ criteria: ADMISSION }) });
    expect(ok.status).toBe(201);
    await expectRejected(subscription({ criteria: `${ADMISSION}|9.9.9` }), { status: 422, code: 'CLARION_SUBSCRIPTION_TOPIC_UNKNOWN', expression: 'Subscription.criteria', diagnostics: /9\.9\.9/ });
  });
});
