/**
 * The websocket channel as the channel registry sees it: Subscription validation accepts
 * `channel.type = websocket` with any endpoint or none (the IG: the client connects to the server, so
 * there is nothing to check). Notifications are not pushed through `deliver`: the websocket hub sends
 * them to the connections bound to the subscription (the delivery worker never claims websocket work).
 */
import type { Channel, DeliveryResult } from '../channel.js';

export class WebSocketChannel implements Channel {
  readonly type = 'websocket';

  checkEndpoint(): string | undefined {
    return undefined;
  }

  deliver(): Promise<DeliveryResult> {
    // Reaching this is a wiring bug (claimDue excludes connection channels), not a delivery failure:
    // failing loudly keeps it from marking events delivered or turning the subscription to error.
    return Promise.reject(new Error('websocket notifications are sent by the websocket hub to bound connections, not pushed'));
  }

  async close(): Promise<void> {}
}
