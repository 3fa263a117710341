/**
 * email end to end: a real Clarion configured with a real SMTP server in the test process. Create an
 * email Subscription over REST (active at once: no verification mail), write Encounters, receive the
 * mails and check their envelope, headers, human-readable body (nothing beyond the content level) and
 * the attached notification bundle (IG profile). SMTP failures are retried, then `error` in $status;
 * a PUT back to requested delivers the backlog. Unsupported combinations are refused at create.
 */
import { xmlToResource } from '../../src/fhir/xml/fhir-xml.js';
import type { Bundle, Encounter, Subscription } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/server/config.js';
import { r4NotificationErrors } from '../support/ig-validator.js';
import { firstIssue } from '../support/server.js';
import { startMailServer, type MailServer, type ReceivedMail } from '../support/smtp-server.js';
import { restHookSubscription, startE2E, statusOf, waitForSubscription, type E2E, admissionEncounter } from '../support/subscription-e2e.js';

let mail: MailServer;
let e2e: E2E;
beforeAll(async () => {
  mail = await startMailServer();
  e2e = await startE2E({ smtpHost: mail.host, smtpPort: mail.port, smtpTls: 'none', smtpFrom: 'Clarion Alerts <alerts@clarion.example>' });
});
afterAll(async () => {
  await e2e?.close();
  await mail?.close();
});

function emailSubscription(o: { to: string; patient: string; payload?: string; content?: 'empty' | 'id-only' | 'full-resource' }): Subscription {
  const base = restHookSubscription({ endpoint: o.to, filters: [`Encounter?patient=${o.patient}`], content: o.content ?? 'id-only', payload: o.payload ?? 'text/plain; attach=application/fhir+json' });
  return { ...base, channel: { ...base.channel, type: 'email' } };
}

async function create(body: Subscription): Promise<Subscription> {
  const res = await e2e.fhir<Subscription>('Subscription', { method: 'POST', body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
}

/** Mails to `address`, in arrival order, once there are `count` of them. */
async function mailsTo(address: string, count: number): Promise<ReceivedMail[]> {
  for (let total = mail.received.length; ; total++) {
    const all = await mail.until(total);
    const mine = all.filter((m) => m.envelope.to.includes(address));
    if (mine.length >= count) return mine;
  }
}

const attachedBundle = (m: ReceivedMail): Bundle => JSON.parse(m.parsed.attachments[0].content.toString('utf8')) as Bundle;

describe('email end to end', () => {
  it('id-only with attachment: active at once, then one mail per event with body and bundle', async () => {
    const sub = await create(emailSubscription({ to: 'mailto:ward-7@example.org', patient: 'Patient/mail-1' }));
    expect(sub.status).toBe('active');
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/other') });
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/mail-1') });
    // The first mail is the event: no verification mail was sent before it.
    const [m] = await mailsTo('ward-7@example.org', 1);
    expect(m.envelope.from).toBe('alerts@clarion.example');
    expect(m.parsed.from?.value).toEqual([{ name: 'Clarion Alerts', address: 'alerts@clarion.example' }]);
    expect(m.parsed.subject).toBe(`[Clarion] 1 new event for Subscription ${sub.id}`);
    expect(m.parsed.text).toContain(`Subscription: ${e2e.baseUrl}/Subscription/${sub.id}`);
    expect(m.parsed.text).toContain(`Focus: ${e2e.baseUrl}/Encounter/${enc.id}`);
    expect(m.parsed.text).toContain('Events since subscription start: 1');
    expect(m.parsed.attachments.map((a) => [a.filename, a.contentType])).toEqual([['notification.json', 'application/fhir+json']]);
    const s = statusOf(attachedBundle(m));
    expect(s.type).toBe('event-notification');
    expect(s.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
    expect(r4NotificationErrors(s.bundle)).toEqual([]);
  });

  it('attaches the bundle as FHIR XML with attach=application/fhir+xml', async () => {
    const sub = await create(emailSubscription({ to: 'mailto:xml-ward@example.org', patient: 'Patient/mail-xml', payload: 'text/plain; attach=application/fhir+xml' }));
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/mail-xml') });
    const [m] = await mailsTo('xml-ward@example.org', 1);
    expect(m.parsed.attachments.map((a) => [a.filename, a.contentType])).toEqual([['notification.xml', 'application/fhir+xml']]);
    const bundle = xmlToResource(m.parsed.attachments[0].content.toString('utf8')) as Bundle;
    const s = statusOf(bundle);
    expect(s.events).toEqual([{ eventNumber: '1', focus: `${e2e.baseUrl}/Encounter/${enc.id}` }]);
    expect(r4NotificationErrors(bundle)).toEqual([]);
    expect(sub.status).toBe('active');
  });

  it('empty as text/html: neither the body nor the subject names a resource', async () => {
    const sub = await create(emailSubscription({ to: 'mailto:privacy@example.org', patient: 'Patient/mail-2', content: 'empty', payload: 'text/html; attach=application/fhir+json' }));
    const { body: enc } = await e2e.fhir<Encounter>('Encounter', { method: 'POST', body: admissionEncounter('Patient/mail-2') });
    const [m] = await mailsTo('privacy@example.org', 1);
    const html = m.parsed.html as string;
    expect(html).toContain(`${e2e.baseUrl}/Subscription/${sub.id}/$events?eventsSinceNumber=1&amp;eventsUntilNumber=1`);
    for (const text of [html, m.parsed.subject ?? '']) {
      expect(text).not.toContain(enc.id);
      expect(text).not.toMatch(/Encounter|Patient/);
    }
    const bundle = attachedBundle(m);
    expect(bundle.entry).toHaveLength(1);
    expect(r4NotificationErrors(bundle)).toEqual([]);
  });

  it('retries a refused recipient, turns error (in $status), and delivers the backlog after re-activation', async () => {
    const to = 'flaky@example.org';
    mail.refuseRecipients((a) => a === to);
    const sub = await create(emailSubscription({ to: `mailto:${to}`, patient: 'Patient/mail-3', payload: 'text/plain' }));
    const attemptsBefore = mail.recipientAttempts.filter((a) => a === to).length;
    expect(attemptsBefore).toBe(0);
    await e2e.fhir('Encounter', { method: 'POST', body: admissionEncounter('Patient/mail-3') });
    const errored = await waitForSubscription(e2e.fhir, sub.id!, (s) => s.status === 'error');
    expect(errored.error).toMatch(/delivery failed after 4 attempt\(s\): the mail server refused the message: .*550/);
    expect(mail.recipientAttempts.filter((a) => a === to)).toHaveLength(4);
    const st = statusOf((await e2e.fhir<Bundle>(`Subscription/${sub.id}/$status`)).body);
    expect(st.status).toBe('error');
    expect(JSON.stringify(st.params)).toContain('error-response');

    mail.refuseRecipients(() => false);
    const put = await e2e.fhir<Subscription>(`Subscription/${sub.id}`, { method: 'PUT', body: { ...errored, status: 'requested' } });
    expect(put.status).toBe(200);
    expect(put.body.status).toBe('active');
    const [m] = await mailsTo(to, 1);
    expect(m.parsed.text).toContain('Event 1');
    expect(m.parsed.attachments).toHaveLength(0);
  });

  it.each([
    ['an endpoint that is not mailto', { endpoint: 'https://example.org/hook' }, 'CLARION_SUBSCRIPTION_ENDPOINT', 'Subscription.channel.endpoint', /is a 'mailto:' URI/],
    ['a malformed address', { endpoint: 'mailto:nobody' }, 'CLARION_SUBSCRIPTION_ENDPOINT', 'Subscription.channel.endpoint', /'nobody' is not an email address/],
    ['mailto header fields', { endpoint: 'mailto:a@example.org?bcc=b@example.org' }, 'CLARION_SUBSCRIPTION_ENDPOINT', 'Subscription.channel.endpoint', /header fields/],
    ['a FHIR MIME type as body', { payload: 'application/fhir+json' }, 'CLARION_SUBSCRIPTION_PAYLOAD', 'Subscription.channel.payload', /body type, text\/plain or text\/html/],
    ['a PDF attachment', { payload: 'text/plain; attach=application/pdf' }, 'CLARION_SUBSCRIPTION_PAYLOAD', 'Subscription.channel.payload', /'application\/pdf' is not a notification format Clarion attaches/],
  ])('refuses %s at create (422)', async (_label, channel, code, expression, why) => {
    const base = emailSubscription({ to: 'mailto:x@example.org', patient: 'Patient/mail-4' });
    const res = await e2e.fhir('Subscription', { method: 'POST', body: { ...base, channel: { ...base.channel, ...channel } } });
    expect(res.status).toBe(422);
    const issue = firstIssue(res.body);
    expect(issue.clarionCode).toBe(code);
    expect(issue.expression).toEqual([expression]);
    expect(issue.diagnostics).toMatch(why);
  });
});

describe('SMTP configuration', () => {
  it('is off without a host, and typed when given', () => {
    expect(loadConfig({}, {}).subscriptions.smtp).toBeUndefined();
    expect(loadConfig({}, { CLARION_SMTP_HOST: 'smtp.example.org', CLARION_SMTP_FROM: 'clarion@example.org', CLARION_SMTP_USER: 'u', CLARION_SMTP_PASSWORD: 'p' }).subscriptions.smtp)
      .toEqual({ host: 'smtp.example.org', port: 587, tls: 'starttls', user: 'u', password: 'p', from: 'clarion@example.org' });
    expect(loadConfig({ smtpHost: 'smtp.example.org', smtpFrom: 'Clarion <c@example.org>', smtpTls: 'implicit' }, {}).subscriptions.smtp).toMatchObject({ port: 465, tls: 'implicit' });
  });

  it('reports every problem by name', () => {
    let problems: string[] = [];
    try {
      loadConfig({ smtpHost: 'smtp.example.org', smtpTls: 'sometimes', smtpPort: '99999', smtpUser: 'u' }, {});
    } catch (err) {
      problems = (err as ConfigError).problems;
    }
    expect(problems).toEqual([
      expect.stringMatching(/SMTP TLS mode must be one of implicit, starttls, opportunistic, none/),
      expect.stringMatching(/SMTP port must be a whole number from 1 to 65535/),
      expect.stringMatching(/SMTP authentication needs both a user and a password/),
      expect.stringMatching(/--smtp-host needs a From address/),
    ]);
    expect(() => loadConfig({ smtpFrom: 'a@example.org' }, {})).toThrow(/--smtp-from need --smtp-host/);
    expect(() => loadConfig({ smtpHost: 'h', smtpFrom: 'a@example.org\r\nBcc: x@example.org' }, {})).toThrow(/SMTP From address must be/);
  });
});
