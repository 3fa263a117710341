/**
 * The human-readable part of a notification mail (IG: "Message Body content SHALL be human readable"),
 * written from the neutral notification, which is already cut to the subscription's content level: an
 * `empty` notification carries no focus, context, entries or topic, so its mail names no resource at
 * all; `id-only` lists references; `full-resource` also says which resources are attached. The subject
 * never names a resource (mail subjects end up in logs, previews and notifications on lock screens).
 * HTML is built from the same rows, every value escaped.
 */
import type { Notification } from '../notify/notification-model.js';
import type { RenderedNotification } from './channel.js';

export interface EmailText {
  subject: string;
  text: string;
  html: string;
}

export interface EmailBodyOptions {
  /** File name of the attached notification bundle, when there is one. */
  attachmentName?: string;
}

interface Section {
  heading: string;
  rows: [label: string, value: string][];
}

const TITLES: Record<RenderedNotification['type'], string> = {
  handshake: 'Subscription handshake',
  heartbeat: 'Subscription heartbeat',
  'event-notification': 'Subscription notification',
};

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Subject, text and HTML of the mail for `rendered` (sent for Subscription `subscriptionId`). */
export function emailText(rendered: RenderedNotification, subscriptionId: string, options: EmailBodyOptions = {}): EmailText {
  const n = rendered.notification;
  const count = n?.events.length ?? 0;
  const what = rendered.type === 'event-notification' ? `${count} new event${count === 1 ? '' : 's'}` : rendered.type;
  const subject = `[Clarion] ${what} for Subscription ${subscriptionId}`;
  const intro = introduction(rendered.type, n, count);
  const sections = n ? sectionsOf(n) : [{ heading: 'Subscription', rows: [['Subscription', subscriptionId]] as [string, string][] }];
  const closing = [...(n ? [followUp(n)] : []), ...(options.attachmentName ? [`The notification bundle is attached (${options.attachmentName}).`] : [])];
  return { subject, text: plainText(TITLES[rendered.type], intro, sections, closing), html: html(TITLES[rendered.type], intro, sections, closing) };
}

function introduction(type: RenderedNotification['type'], n: Notification | undefined, count: number): string {
  if (type === 'handshake') return 'This address was set up to receive the notifications of a FHIR Subscription.';
  if (type === 'heartbeat') return `Nothing has happened for this subscription for a while; it is ${n?.status ?? 'still there'}.`;
  return `${count === 1 ? 'An event' : `${count} events`} matched this subscription.`;
}

function sectionsOf(n: Notification): Section[] {
  const overview: Section = {
    heading: 'Subscription',
    rows: [
      ['Subscription', n.subscriptionReference],
      ...(n.topic ? [['Topic', n.topic] as [string, string]] : []),
      ['Status', n.status],
      ['Events since subscription start', String(n.eventsSinceSubscriptionStart)],
      ['Content level', n.content],
    ],
  };
  const events = n.events.map((e): Section => ({
    heading: `Event ${e.eventNumber}`,
    rows: [
      ...(e.timestamp ? [['Time', e.timestamp] as [string, string]] : []),
      // Present only for id-only and full-resource (the builder leaves them out for empty).
      ...(e.focus ? [['Focus', e.focus] as [string, string]] : []),
      ...e.additionalContext.map((c) => ['Context', c] as [string, string]),
    ],
  }));
  const attached = n.entries.filter((e) => e.resource !== undefined).map((e) => ['Included', e.fullUrl] as [string, string]);
  return [overview, ...events, ...(attached.length ? [{ heading: 'Resources in the notification', rows: attached }] : [])];
}

/** What the reader does next, by content level (without naming resources for `empty`). */
function followUp(n: Notification): string {
  if (n.events.length === 0) return `Subscription status: ${n.subscriptionReference}/$status`;
  const first = n.events[0].eventNumber;
  const last = n.events[n.events.length - 1].eventNumber;
  if (n.content === 'empty') return `This notification carries no resource details. Ask the server what happened: ${n.subscriptionReference}/$events?eventsSinceNumber=${first}&eventsUntilNumber=${last}`;
  if (n.content === 'id-only') return 'Read the resources at the references above.';
  return 'The resources are included in the notification bundle.';
}

function plainText(title: string, intro: string, sections: Section[], closing: string[]): string {
  const lines = [title, '='.repeat(title.length), '', intro];
  for (const s of sections) {
    lines.push('', s.heading);
    for (const [label, value] of s.rows) lines.push(`  ${label}: ${value}`);
  }
  if (closing.length) lines.push('', ...closing);
  return `${lines.join('\n')}\n`;
}

function html(title: string, intro: string, sections: Section[], closing: string[]): string {
  const e = escapeHtml;
  const parts = [`<!DOCTYPE html><html><head><meta charset="utf-8"><title>${e(title)}</title></head><body>`, `<h1>${e(title)}</h1>`, `<p>${e(intro)}</p>`];
  for (const s of sections) {
    parts.push(`<h2>${e(s.heading)}</h2>`, '<table>');
    for (const [label, value] of s.rows) parts.push(`<tr><th align="left">${e(label)}</th><td>${e(value)}</td></tr>`);
    parts.push('</table>');
  }
  for (const c of closing) parts.push(`<p>${e(c)}</p>`);
  parts.push('</body></html>');
  return parts.join('\n');
}
