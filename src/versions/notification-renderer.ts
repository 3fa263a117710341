/**
 * Renders a neutral notification in the wire form its subscription asked for: R4 backport (Parameters
 * status in a history Bundle), R4B (SubscriptionStatus) or R5. The only place that picks a renderer by
 * version, for every channel.
 */
import type { RenderedNotification } from '../channels/channel.js';
import { isXmlMediaType, resourceToXml } from '../fhir/xml/fhir-xml.js';
import { buildNotification, type BuildOptions } from '../notify/bundle-builder.js';
import type { Notification, NotificationInput } from '../notify/notification-model.js';
import type { SubscriptionSpec } from '../subscriptions/subscription-model.js';
import { notificationBundleR4 } from './r4/notification-r4.js';
import { notificationBundleR4B } from './r4b/notification-r4b.js';
import { notificationBundleR5 } from './r5/notification-r5.js';

export function notificationBundle(input: NotificationInput, version: SubscriptionSpec['notificationVersion'], options: BuildOptions = {}): object {
  return bundleOf(buildNotification(input, options), version);
}

function bundleOf(n: Notification, version: SubscriptionSpec['notificationVersion']): object {
  if (version === 'R4B') return notificationBundleR4B(n);
  if (version === 'R5') return notificationBundleR5(n);
  return notificationBundleR4(n);
}

/**
 * A notification Bundle in the format `channel.payload` asks for: FHIR XML for application/fhir+xml
 * (or another XML type) and for email's `text/plain; attach=application/fhir+xml` (email attaches
 * `body` as is), JSON otherwise.
 */
export function serializeNotificationBundle(bundle: object, contentType: string): string {
  const attach = /;\s*attach\s*=\s*"?([^;"\s]+)/i.exec(contentType)?.[1];
  const xml = isXmlMediaType(contentType) || (attach !== undefined && isXmlMediaType(attach));
  return xml ? resourceToXml(bundle) : JSON.stringify(bundle);
}

export function renderNotification(input: NotificationInput, spec: SubscriptionSpec, options: BuildOptions = {}): RenderedNotification {
  const type = input.type === 'handshake' || input.type === 'heartbeat' ? input.type : 'event-notification';
  // Built once: the wire bundle and, for channels that describe it (email), the neutral notification.
  const notification = buildNotification(input, options);
  return {
    type,
    body: serializeNotificationBundle(bundleOf(notification, spec.notificationVersion), spec.contentType),
    contentType: spec.contentType,
    notification,
  };
}
