import type { Bundle } from 'fhir/r4.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RenderedNotification } from '../../src/channels/channel.js';
import { emailText, escapeHtml } from '../../src/channels/email-body.js';
import { classifySmtpError, EmailChannel, parseEmailPayload, parseMailto, smtpTransport } from '../../src/channels/email-channel.js';
import type { NotificationInput, PayloadContent } from '../../src/notify/notification-model.js';
import type { SubscriptionSpec } from '../../src/subscriptions/subscription-model.js';
import { renderNotification } from '../../src/versions/notification-renderer.js';
import { r4NotificationErrors } from '../support/ig-validator.js';
import { startMailServer, type MailServer } from '../support/smtp-server.js';

const BASE = 'https://clarion.example/fhir';
const TOPIC = 'http://hl7.org/SubscriptionTopic/admission';
let mail: MailServer;
let channel: EmailChannel;

function spec(content: PayloadContent, contentType: string): SubscriptionSpec {
  return {
    id: 'sub-1', topic: TOPIC, status: 'active', filters: [], contentType, content, notificationVersion: 'R4',
    channel: { type: 'email', endpoint: 'mailto:care-team@example.org', headers: [] },
  };
}

function render(content: PayloadContent, contentType: string, type: NotificationInput['type'] = 'event-notification'): RenderedNotification {
  const patient = { resourceType: 'Patient', id: 'p-42', name: [{ family: 'Chalmers', given: ['Peter'] }], meta: { versionId: '1' } };
  const input: NotificationInput = {
    subscription: { id: 'sub-1', topicUrl: TOPIC, status: 'active', content },
    type,
    eventsSinceSubscriptionStart: type === 'event-notification' ? 7 : 6,
    events: type === 'event-notification' ? [{ eventNumber: 7, timestamp: '2026-01-02T03:04:05.000Z', focus: { reference: 'Patient/p-42', interaction: 'update', resource: patient } }] : [],
    baseUrl: BASE,
  };
  return renderNotification(input, spec(content, contentType));
}

const target = (endpoint = 'mailto:care-team@example.org') => ({ subscriptionId: 'sub-1', endpoint, headers: [], timeoutMs: 10_000 });

beforeAll(async () => {
  mail = await startMailServer();
  channel = new EmailChannel({ transport: smtpTransport({ host: mail.host, port: mail.port, tls: 'none' }), from: 'Clarion <clarion@example.org>' });
});
afterAll(async () => {
  await channel?.close();
  await mail?.close();
});

describe('mailto endpoints', () => {
  it('reads one or several recipients, percent-decoded, without duplicates', () => {
    expect(parseMailto('mailto:a@example.org')).toEqual({ recipients: ['a@example.org'] });
    expect(parseMailto('MAILTO:a@example.org,b.c+alerts@sub.example.org,A@example.org')).toEqual({ recipients: ['a@example.org', 'b.c+alerts@sub.example.org'] });
    expect(parseMailto('mailto:a%2Bb@example.org')).toEqual({ recipients: ['a+b@example.org'] });
  });

  it.each([
    [undefined, /needs channel.endpoint/],
    ['https://example.org/hook', /is a 'mailto:' URI/],
    ['mailto:', /is not an email address/],
    ['mailto:a@example.org?cc=b@example.org', /header fields .* are not supported/],
    ['mailto:not-an-address', /'not-an-address' is not an email address/],
    ['mailto:a@localhost', /is not an email address/],
    ['mailto:a@example.org%0D%0ABcc:x@example.org', /is not an email address/],
    ['mailto:%E0%A4%A', /not a valid percent-encoded address/],
  ])('refuses %s', (endpoint, why) => {
    const r = parseMailto(endpoint);
    expect('error' in r && r.error).toMatch(why);
    expect(channel.checkEndpoint(endpoint)).toMatch(why);
  });

  it('caps the number of recipients', () => {
    const many = Array.from({ length: 11 }, (_, i) => `u${i}@example.org`).join(',');
    expect(channel.checkEndpoint(`mailto:${many}`)).toMatch(/at most 10 recipients/);
  });
});

describe('email payloads', () => {
  it('accepts a text/plain or text/html body, optionally with a FHIR JSON attachment', () => {
    expect(parseEmailPayload('text/plain')).toEqual({ body: 'text/plain' });
    expect(parseEmailPayload('text/html; attach=application/fhir+json')).toEqual({ body: 'text/html', attach: 'application/fhir+json' });
    expect(parseEmailPayload('Text/Plain;attach="application/fhir+json"; charset=utf-8')).toEqual({ body: 'text/plain', attach: 'application/fhir+json' });
  });

  it.each([
    ['application/fhir+json', /channel.payload is the body type, text\/plain or text\/html/],
    ['text/plain; attach=application/pdf', /'application\/pdf' is not a notification format Clarion attaches; accepted: attach=application\/fhir\+json/],
    ['text/plain; attach=application/pdf', /'application\/pdf' is not a notification format/],
    ['text/plain; attach=application/fhir+json; attach=application/fhir+json', /only once/],
    ['text/plain; format=flowed', /MIME parameter 'format=flowed' is not supported/],
  ])('refuses %s', (payload, why) => {
    expect(channel.checkPayload(payload)).toMatch(why);
  });
});

describe('email delivery to a real SMTP server', () => {
  it('id-only, text/plain with the notification bundle attached', async () => {
    const before = mail.received.length;
    const n = render('id-only', 'text/plain; attach=application/fhir+json');
    // The renderer hands channels the neutral notification it rendered the bundle from.
    expect(n.notification).toMatchObject({ type: 'event-notification', subscriptionId: 'sub-1', content: 'id-only', events: [{ eventNumber: 7, focus: `${BASE}/Patient/p-42` }] });
    expect(await channel.deliver(target('mailto:care-team@example.org,oncall@example.org'), n)).toEqual({ ok: true });
    const [m] = (await mail.until(before + 1)).slice(before);
    expect(m.envelope).toEqual({ from: 'clarion@example.org', to: ['care-team@example.org', 'oncall@example.org'] });
    expect(m.parsed.from?.value).toEqual([{ name: 'Clarion', address: 'clarion@example.org' }]);
    expect((Array.isArray(m.parsed.to) ? m.parsed.to : [m.parsed.to]).flatMap((t) => t?.value.map((v) => v.address))).toEqual(['care-team@example.org', 'oncall@example.org']);
    expect(m.parsed.subject).toBe('[Clarion] 1 new event for Subscription sub-1');
    expect(m.parsed.headers.get('x-clarion-notification-type')).toBe('event-notification');
    expect(m.parsed.html).toBe(false);
    expect(m.parsed.text).toContain(`Focus: ${BASE}/Patient/p-42`);
    expect(m.parsed.text).toContain('Event 7');
    expect(m.parsed.text).not.toContain('Chalmers');
    expect(m.parsed.attachments).toHaveLength(1);
    const [a] = m.parsed.attachments;
    expect(a.filename).toBe('notification.json');
    expect(a.contentType).toBe('application/fhir+json');
    const bundle = JSON.parse(a.content.toString('utf8')) as Bundle;
    expect(bundle).toEqual(JSON.parse(n.body));
    expect(r4NotificationErrors(bundle)).toEqual([]);
  });

  it('empty, text/html without attachment: no resource ids in subject or body', async () => {
    const before = mail.received.length;
    expect(await channel.deliver(target(), render('empty', 'text/html'))).toEqual({ ok: true });
    const [m] = (await mail.until(before + 1)).slice(before);
    const html = m.parsed.html as string;
    expect(html).toContain('<h1>Subscription notification</h1>');
    expect(html).toContain('Event 7');
    expect(html).toContain(`${BASE}/Subscription/sub-1/$events?eventsSinceNumber=7&amp;eventsUntilNumber=7`);
    for (const text of [html, m.parsed.subject ?? '', m.parsed.text ?? '']) {
      expect(text).not.toMatch(/Patient|p-42|Chalmers/);
    }
    expect(m.parsed.attachments).toHaveLength(0);
  });

  it('full-resource names the included resources in the body but not in the subject', async () => {
    const before = mail.received.length;
    expect(await channel.deliver(target(), render('full-resource', 'text/plain; attach=application/fhir+json'))).toEqual({ ok: true });
    const [m] = (await mail.until(before + 1)).slice(before);
    expect(m.parsed.text).toContain(`Included: ${BASE}/Patient/p-42`);
    expect(m.parsed.subject).not.toMatch(/Patient|p-42/);
    const bundle = JSON.parse(m.parsed.attachments[0].content.toString('utf8')) as Bundle;
    expect(bundle.entry?.[1]?.resource).toMatchObject({ resourceType: 'Patient', id: 'p-42' });
    expect(r4NotificationErrors(bundle)).toEqual([]);
  });

  it('a heartbeat is a mail too', async () => {
    const before = mail.received.length;
    expect(await channel.deliver(target(), render('id-only', 'text/plain', 'heartbeat'))).toEqual({ ok: true });
    const [m] = (await mail.until(before + 1)).slice(before);
    expect(m.parsed.subject).toBe('[Clarion] heartbeat for Subscription sub-1');
    expect(m.parsed.text).toContain('Events since subscription start: 6');
  });

  it('a refused recipient is an error-response with the server reply', async () => {
    mail.refuseRecipients((a) => a === 'gone@example.org');
    const r = await channel.deliver(target('mailto:gone@example.org'), render('id-only', 'text/plain'));
    mail.refuseRecipients(() => false);
    expect(r).toMatchObject({ ok: false, code: 'error-response', message: expect.stringMatching(/refused the message: .*550.*Recipient address rejected/) });
  });

  it('an unreachable mail server is no-response', async () => {
    const down = await startMailServer();
    await down.close();
    const ch = new EmailChannel({ transport: smtpTransport({ host: down.host, port: down.port, tls: 'none' }), from: 'clarion@example.org' });
    const r = await ch.deliver(target(), render('id-only', 'text/plain'));
    await ch.close();
    expect(r).toMatchObject({ ok: false, code: 'no-response', message: expect.stringMatching(/could not be reached/) });
  });

  it('logs in when the server requires AUTH', async () => {
    const secured = await startMailServer({ auth: { user: 'clarion', password: 's3cret' } });
    const good = new EmailChannel({ transport: smtpTransport({ host: secured.host, port: secured.port, tls: 'none', user: 'clarion', password: 's3cret' }), from: 'clarion@example.org' });
    const bad = new EmailChannel({ transport: smtpTransport({ host: secured.host, port: secured.port, tls: 'none', user: 'clarion', password: 'wrong' }), from: 'clarion@example.org' });
    try {
      expect(await good.deliver(target(), render('id-only', 'text/plain'))).toEqual({ ok: true });
      const [m] = await secured.until(1);
      expect(m.user).toBe('clarion');
      expect(await bad.deliver(target(), render('id-only', 'text/plain'))).toMatchObject({ ok: false, code: 'error-response' });
    } finally {
      await good.close();
      await bad.close();
      await secured.close();
    }
  });
});

describe('email body', () => {
  it('escapes every value in HTML', () => {
    expect(escapeHtml(`<a href="x">'&'</a>`)).toBe('&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
    const n = render('id-only', 'text/html');
    const hostile: RenderedNotification = { ...n, notification: { ...n.notification!, topic: 'http://evil.example/<script>alert(1)</script>' } };
    const { html } = emailText(hostile, 'sub-1');
    expect(html).not.toContain('<script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('without the neutral notification it still says what and for which subscription', () => {
    const { subject, text } = emailText({ type: 'heartbeat', body: '{}', contentType: 'text/plain' }, 'sub-9');
    expect(subject).toBe('[Clarion] heartbeat for Subscription sub-9');
    expect(text).toContain('Subscription: sub-9');
  });

  it('classifies DNS failures', () => {
    expect(classifySmtpError(Object.assign(new Error('getaddrinfo ENOTFOUND smtp.invalid'), { code: 'EDNS' }))).toMatchObject({ code: 'dns-resolution-error' });
  });
});
