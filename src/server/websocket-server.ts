/**
 * HTTP wiring of the websocket channel: the `$get-ws-binding-token` operation (type and instance
 * level, GET and POST) and the websocket endpoint it advertises, served by @fastify/websocket on the
 * server's own port, with the hub (src/channels/websocket/websocket-hub.ts) behind it.
 *
 * Decisions:
 * - The endpoint is `{base}/subscription-websocket` (as in the R5 example `…/fhir/R5/subscription-websocket`).
 *   `websocket-url` is built from the public base URL (config.baseUrl, else the listening address) —
 *   the same base as every other absolute URL Clarion returns — with http→ws and https→wss, so a
 *   server behind a TLS proxy with `--base-url https://…` advertises `wss://…`.
 * - Type level needs at least one `id` (the IG lets a server refuse the "all my websocket
 *   subscriptions" form; without authentication "mine" would mean everyone's). At instance level
 *   `id` parameters are ignored, as the IG says.
 * - Each id must be a stored websocket Subscription that is not off: unknown is 404, deleted 410,
 *   another channel or off 422 (CLARION_WS_TOKEN_REFUSED). The answer is `Cache-Control: no-store`.
 * - Requester: see requesterOf.
 */
import fastifyWebsocket from '@fastify/websocket';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Parameters, Subscription } from 'fhir/r4.js';
import { ANONYMOUS, issueToken } from '../channels/websocket/binding-tokens.js';
import { WebSocketHub } from '../channels/websocket/websocket-hub.js';
import { Errors } from '../fhir/errors.js';
import type { SubscriptionSpec } from '../subscriptions/subscription-model.js';
import { renderNotification } from '../versions/notification-renderer.js';
import { NotificationTemplates } from '../versions/notification-templates.js';
import { subscriptionFromR4 } from '../versions/r4/subscription-r4.js';
import type { Clarion } from './clarion.js';
import type { FhirResponse } from './fhir-exchange.js';
import { FHIR_PREFIX } from './fhir-routes.js';
import { operationParameters } from './operation-parameters.js';
import type { OperationInvocation } from './operations.js';
import { isValidId } from './request-parsing.js';

/** Path of the websocket endpoint, relative to the FHIR base. */
export const WEBSOCKET_SUBPATH = 'subscription-websocket';

/**
 * The advertised websocket URL: the FHIR base with http→ws, https→wss. A configured public base URL
 * (`--base-url`, e.g. behind a TLS proxy) wins; otherwise it follows how this request reached the
 * server (its scheme and Host header), so a client that came in by name gets a URL with that name.
 */
export function websocketUrl(baseUrl: string, origin?: { protocol: 'http' | 'https'; host: string }, configured = false): string {
  let base = baseUrl;
  if (!configured && origin) {
    const u = new URL(baseUrl);
    base = `${origin.protocol}://${origin.host}${u.pathname}`;
  }
  return `${base.replace(/^http/, 'ws').replace(/\/+$/, '')}/${WEBSOCKET_SUBPATH}`;
}

/**
 * The identity a token is bound to. Clarion has no authentication yet, so every request is
 * 'anonymous' and the token alone authorises a bind (a bearer secret, short-lived). The remote address
 * is deliberately not used: behind a proxy or NAT many users share one address, and a mobile client
 * changes address between the REST call and the connect. When authentication arrives, this returns the
 * verified principal of the request (REST call and websocket upgrade alike); binding-tokens.ts then
 * refuses a token issued to another principal on an authenticated connection.
 */
export function requesterOf(_request?: FastifyRequest): string {
  return ANONYMOUS;
}

/** Installs the endpoint, the operation and the hub; the caller wakes the hub on new events and closes it. */
export async function installWebSocketChannel(clarion: Clarion): Promise<WebSocketHub> {
  const { config, store, logger } = clarion;
  const ws = config.subscriptions.websocket;
  const log = logger.child({ component: 'websocket' });
  const hub = new WebSocketHub({
    db: clarion.db,
    clock: clarion.clock,
    loadSubscription: async (id) => {
      try {
        const resource = await store.read('Subscription', id);
        return { spec: subscriptionFromR4(resource).spec, version: Number(resource.meta?.versionId ?? 0) };
      } catch {
        return undefined; // deleted, unknown or unreadable: its bindings end
      }
    },
    render: (input, spec) => renderNotification(input, spec),
    // One write often triggers many subscriptions of a topic: their notifications are rendered once per round.
    roundRender: () => new NotificationTemplates().bytes,
    baseUrl: () => clarion.baseUrl(),
    maxBindingsPerConnection: ws.maxBindingsPerConnection,
    idleTimeoutMs: ws.idleTimeoutSeconds * 1000,
    onError: (err, context) => log.error({ err, ...context }, 'websocket hub error'),
  });

  const app = clarion.app;
  // ws closes a connection whose message exceeds maxPayload with 1009 (Message Too Big).
  await app.register(fastifyWebsocket, { options: { maxPayload: ws.maxFrameBytes } });
  app.route({
    method: 'GET',
    url: `${FHIR_PREFIX}/${WEBSOCKET_SUBPATH}`,
    handler: upgradeRequired,
    wsHandler: (socket, request) => hub.attach(socket, requesterOf(request)),
  });

  clarion.operations.register({
    name: 'get-ws-binding-token',
    levels: ['type', 'instance'],
    types: ['Subscription'],
    methods: ['GET', 'POST'],
    handler: (inv) => getWsBindingToken(inv, clarion),
  });
  hub.start();
  return hub;
}

/** A plain GET on the websocket endpoint: say what it is for. */
async function upgradeRequired(_request: FastifyRequest, reply: FastifyReply): Promise<void> {
  await reply
    .code(426)
    .header('Upgrade', 'websocket')
    .type('application/fhir+json')
    .send({ resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'not-supported', diagnostics: 'This is the Subscription websocket endpoint: connect with a websocket client and send bind-with-token (see $get-ws-binding-token)' }] });
}

async function getWsBindingToken(inv: OperationInvocation, clarion: Pick<Clarion, 'clock' | 'config'>): Promise<FhirResponse> {
  const max = inv.config.subscriptions.websocket.maxBindingsPerConnection;
  let ids: string[];
  if (inv.level === 'instance') {
    ids = [inv.id as string];
  } else {
    ids = [
      ...new Set(
        operationParameters(inv.request)
          .filter(([k]) => k === 'id')
          .flatMap(([, v]) => v.split(','))
          .map((s) => s.trim())
          .filter((s) => s !== ''),
      ),
    ];
    if (ids.length === 0) throw Errors.invalidParameter({ name: 'id', reason: 'at least one Subscription id is required at type level (e.g. Subscription/$get-ws-binding-token?id=abc)' }, ['id']);
    const bad = ids.find((id) => !isValidId(id));
    if (bad !== undefined) throw Errors.invalidParameter({ name: 'id', reason: `'${bad}' is not a FHIR id ([A-Za-z0-9\\-\\.]{1,64})` }, ['id']);
    if (ids.length > max) throw Errors.invalidParameter({ name: 'id', reason: `a token may cover at most ${max} subscriptions (the bindings one connection may hold)` }, ['id']);
  }
  for (const id of ids) {
    const resource = (await inv.store.read('Subscription', id)) as Subscription; // the standard 404 / 410
    const refusal = whyNoToken(resource);
    if (refusal) throw Errors.wsTokenRefused({ id, reason: refusal });
  }
  const issued = await issueToken(inv.store.queryable, {
    requester: requesterOf(),
    subscriptionIds: ids,
    now: clarion.clock.now(),
    lifetimeSeconds: inv.config.subscriptions.websocket.tokenLifetimeSeconds,
  });
  const body: Parameters = {
    resourceType: 'Parameters',
    parameter: [
      { name: 'token', valueString: issued.token },
      { name: 'expiration', valueDateTime: issued.expiresAt.toISOString() },
      ...ids.map((id) => ({ name: 'subscription', valueString: id })),
      { name: 'websocket-url', valueUrl: websocketUrl(inv.baseUrl, inv.request.origin, inv.config.baseUrl !== undefined) },
    ],
  };
  // The token is a bearer secret: no cache may keep it.
  return { status: 200, body, headers: { 'Cache-Control': 'no-store' } };
}

function whyNoToken(resource: Subscription): string | undefined {
  let spec: SubscriptionSpec;
  try {
    spec = subscriptionFromR4(resource).spec;
  } catch {
    return 'the stored Subscription cannot be read as a backport Subscription';
  }
  if (spec.channel.type !== 'websocket' || spec.channel.custom) return `its channel is ${spec.channel.custom?.code ?? spec.channel.type}, not websocket`;
  if (spec.status === 'off') return 'it is off';
  return undefined;
}
