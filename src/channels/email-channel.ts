/**
 * email: one mail per notification to the `mailto:` endpoint, through one pooled SMTP transport
 * (nodemailer). `channel.payload` is the body's MIME type — `text/plain` or `text/html` — and, with
 * `attach=application/fhir+json`, the notification bundle (already cut to the content level) is
 * attached as `notification.json`. The body is written from the neutral notification (email-body.ts)
 * and never goes beyond the content level. `channel.header` has no meaning for mail and is not sent.
 *
 * Failures are classified like rest-hook's (the worker retries them and turns the subscription `error`
 * after the last attempt): no connection → no-response, an SMTP error reply (e.g. a refused
 * recipient) → error-response, an unresolvable mail server → dns-resolution-error.
 */
import { createTransport, type Transporter } from 'nodemailer';
import type { Channel, ChannelTarget, DeliveryResult, RenderedNotification } from './channel.js';
import { emailText } from './email-body.js';

/** SMTP connection settings (the server's --smtp-* configuration). */
export interface SmtpSettings {
  host: string;
  port: number;
  /** implicit: TLS from the start (port 465); starttls: upgrade required; opportunistic: upgrade if offered; none: never. */
  tls: 'implicit' | 'starttls' | 'opportunistic' | 'none';
  user?: string;
  password?: string;
}

export interface EmailChannelOptions {
  /** Where mails go out: `smtpTransport(settings)` in the server; any nodemailer transport works. */
  transport: Transporter;
  /** The From address (`clarion@example.org` or `Clarion <clarion@example.org>`). */
  from: string;
  /**
   * Bundle MIME types accepted in `attach=`; default FHIR JSON and FHIR XML (the renderer writes the
   * bundle in the attach= format).
   */
  attachTypes?: readonly string[];
  /** Most recipients in one endpoint; default 10 (a subscription is not a mailing list). */
  maxRecipients?: number;
}

export const BODY_TYPES = ['text/plain', 'text/html'] as const;
export const DEFAULT_ATTACH_TYPES: readonly string[] = ['application/fhir+json', 'application/json', 'application/fhir+xml'];

/** One pooled SMTP transport for every email subscription. */
export function smtpTransport(s: SmtpSettings): Transporter {
  return createTransport({
    pool: true,
    maxConnections: 4,
    host: s.host,
    port: s.port,
    secure: s.tls === 'implicit',
    requireTLS: s.tls === 'starttls',
    ignoreTLS: s.tls === 'none',
    ...(s.user !== undefined ? { auth: { user: s.user, pass: s.password ?? '' } } : {}),
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  });
}

// An addr-spec without quoted local parts or IP literals; the domain needs a dot (no bare host names).
const LOCAL = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*";
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const ADDRESS = new RegExp(`^${LOCAL}@${LABEL}(?:\\.${LABEL})+$`);

/**
 * `mailto:a@example.org` or `mailto:a@example.org,b@example.org` (RFC 6068, percent-decoded) → the
 * recipients, or why the endpoint is unusable. Header fields (`?subject=`, `?cc=`) are refused: the
 * server writes the mail, and hidden recipients would hide where notifications go.
 */
export function parseMailto(endpoint: string | undefined, maxRecipients = 10): { recipients: string[] } | { error: string } {
  if (!endpoint) return { error: "an email subscription needs channel.endpoint: 'mailto:' and the recipient's address" };
  if (!/^mailto:/i.test(endpoint)) return { error: "an email endpoint is a 'mailto:' URI, e.g. mailto:alerts@example.org" };
  const rest = endpoint.slice('mailto:'.length);
  if (rest.includes('?')) return { error: 'mailto header fields (?subject=, ?cc=, …) are not supported; list the recipients comma-separated: mailto:a@example.org,b@example.org' };
  const recipients: string[] = [];
  for (const raw of rest.split(',')) {
    let address: string;
    try {
      address = decodeURIComponent(raw).trim();
    } catch {
      return { error: `'${raw}' is not a valid percent-encoded address` };
    }
    if (!ADDRESS.test(address)) return { error: `'${address}' is not an email address (expected name@domain.example)` };
    if (!recipients.some((r) => r.toLowerCase() === address.toLowerCase())) recipients.push(address);
  }
  if (recipients.length > maxRecipients) return { error: `at most ${maxRecipients} recipients per subscription (got ${recipients.length})` };
  return { recipients };
}

export interface EmailPayload {
  body: (typeof BODY_TYPES)[number];
  /** MIME type of the attached notification bundle, if any. */
  attach?: string;
}

/** `text/plain; attach=application/fhir+json` → body type and attachment type, or why it is not supported. */
export function parseEmailPayload(contentType: string, attachTypes: readonly string[] = DEFAULT_ATTACH_TYPES): EmailPayload | { error: string } {
  const [type, ...params] = contentType.split(';').map((s) => s.trim());
  const body = type.toLowerCase();
  const usage = `an email subscription's channel.payload is the body type, ${BODY_TYPES.join(' or ')}, optionally with attach=${attachTypes[0] ?? 'application/fhir+json'} (e.g. 'text/plain; attach=application/fhir+json')`;
  if (!(BODY_TYPES as readonly string[]).includes(body)) return { error: usage };
  let attach: string | undefined;
  for (const p of params) {
    if (p === '') continue;
    const eq = p.indexOf('=');
    const name = (eq > 0 ? p.slice(0, eq) : p).trim().toLowerCase();
    const value = eq > 0 ? p.slice(eq + 1).trim().replace(/^"|"$/g, '').toLowerCase() : '';
    if (name === 'charset' && value === 'utf-8') continue; // what Clarion sends anyway
    if (name !== 'attach') return { error: `MIME parameter '${p}' is not supported; ${usage}` };
    if (attach !== undefined) return { error: 'attach= may appear only once' };
    if (!attachTypes.includes(value)) {
      const why = `'${value}' is not a notification format Clarion attaches`;
      return { error: `${why}; accepted: attach=${attachTypes.join(', attach=')}` };
    }
    attach = value;
  }
  return { body: body as EmailPayload['body'], ...(attach ? { attach } : {}) };
}

function attachmentName(type: string): string {
  return type.endsWith('xml') ? 'notification.xml' : 'notification.json';
}

export class EmailChannel implements Channel {
  readonly type = 'email';
  private readonly attachTypes: readonly string[];

  constructor(private readonly options: EmailChannelOptions) {
    this.attachTypes = options.attachTypes ?? DEFAULT_ATTACH_TYPES;
  }

  checkEndpoint(endpoint: string | undefined): string | undefined {
    const parsed = parseMailto(endpoint, this.options.maxRecipients);
    return 'error' in parsed ? parsed.error : undefined;
  }

  checkPayload(contentType: string): string | undefined {
    const parsed = parseEmailPayload(contentType, this.attachTypes);
    return 'error' in parsed ? parsed.error : undefined;
  }

  async deliver(target: ChannelTarget, notification: RenderedNotification): Promise<DeliveryResult> {
    const to = parseMailto(target.endpoint, this.options.maxRecipients);
    if ('error' in to) return { ok: false, code: 'endpoint-refused', message: to.error };
    const payload = parseEmailPayload(notification.contentType, this.attachTypes);
    if ('error' in payload) return { ok: false, code: 'endpoint-refused', message: payload.error };
    const name = payload.attach ? attachmentName(payload.attach) : undefined;
    const text = emailText(notification, target.subscriptionId, name ? { attachmentName: name } : {});
    const send = this.options.transport.sendMail({
      from: this.options.from,
      to: to.recipients,
      subject: text.subject,
      ...(payload.body === 'text/html' ? { html: text.html } : { text: text.text }),
      ...(payload.attach && name ? { attachments: [{ filename: name, content: notification.body, contentType: payload.attach }] } : {}),
      headers: { 'X-Clarion-Subscription': target.subscriptionId, 'X-Clarion-Notification-Type': notification.type },
    });
    let timer: NodeJS.Timeout | undefined;
    // The attempt is bounded like rest-hook's: the worker's lease is timeout + margin.
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(Object.assign(new Error(`no answer from the mail server within ${target.timeoutMs} ms`), { code: 'ETIMEDOUT' })), target.timeoutMs);
    });
    try {
      await Promise.race([send, timeout]);
      return { ok: true };
    } catch (err) {
      send.catch(() => undefined); // a send that outlived its bound must not become an unhandled rejection
      return classifySmtpError(err);
    } finally {
      clearTimeout(timer);
    }
  }

  async close(): Promise<void> {
    this.options.transport.close();
  }
}

/** nodemailer errors → subscription-error codes, with the server's reply when there was one. */
export function classifySmtpError(err: unknown): Exclude<DeliveryResult, { ok: true }> {
  const e = (err ?? {}) as { code?: string; responseCode?: number; response?: string; message?: string };
  if (e.code === 'EDNS' || e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN') {
    return { ok: false, code: 'dns-resolution-error', message: `the mail server's host name could not be resolved (${e.message ?? e.code})` };
  }
  if (typeof e.responseCode === 'number') {
    return { ok: false, code: 'error-response', message: `the mail server refused the message: ${(e.response ?? e.message ?? String(e.responseCode)).trim()}` };
  }
  if (e.code === 'EAUTH') return { ok: false, code: 'error-response', message: `SMTP authentication failed: ${e.message ?? ''}`.trim() };
  return { ok: false, code: 'no-response', message: `the mail server could not be reached: ${e.message ?? e.code ?? String(err)}` };
}
