/**
 * rest-hook: POST the notification to `channel.endpoint` with `Content-Type` = `channel.payload` and
 * every `channel.header` as an HTTP header; any 2xx is delivered. One shared undici Agent pools
 * connections; every connection's DNS lookup goes through the endpoint guard; redirects are not
 * followed; each attempt is bounded by the subscription's timeout.
 */
import { Agent, request } from 'undici';
import type { Channel, ChannelTarget, DeliveryResult, RenderedNotification } from './channel.js';
import { EndpointGuard, EndpointRefusedError } from './endpoint-guard.js';
import { channelHeaders } from './http-headers.js';

export interface RestHookOptions {
  guard: EndpointGuard;
  /** Connections per origin; default 16. */
  connectionsPerOrigin?: number;
  userAgent?: string;
}

export class RestHookChannel implements Channel {
  readonly type = 'rest-hook';
  private readonly agent: Agent;

  constructor(private readonly options: RestHookOptions) {
    this.agent = guardedAgent(options.guard, options.connectionsPerOrigin);
  }

  checkEndpoint(endpoint: string | undefined): string | undefined {
    if (!endpoint) return 'a rest-hook subscription needs channel.endpoint (an https URL)';
    return this.options.guard.refuseUrl(endpoint);
  }

  async deliver(target: ChannelTarget, notification: RenderedNotification): Promise<DeliveryResult> {
    const endpoint = target.endpoint ?? '';
    const refused = this.checkEndpoint(endpoint);
    if (refused) return { ok: false, code: 'endpoint-refused', message: refused };
    return postNotification(this.agent, endpoint, notification.body, {
      ...channelHeaders(target.headers),
      'content-type': notification.contentType,
      'user-agent': this.options.userAgent ?? 'Clarion',
    }, target.timeoutMs);
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/** A pooled undici Agent whose every connection resolves its host through the endpoint guard. */
export function guardedAgent(guard: EndpointGuard, connectionsPerOrigin = 16): Agent {
  return new Agent({
    connections: connectionsPerOrigin,
    keepAliveTimeout: 30_000,
    connect: { lookup: guard.lookup, timeout: 10_000 },
  });
}

/** One bounded POST; classifies failures with the subscription-error codes. */
export async function postNotification(
  agent: Agent,
  url: string,
  body: string,
  headers: Record<string, string>,
  timeoutMs: number,
): Promise<DeliveryResult> {
  // A timer cleared when the attempt ends, not AbortSignal.timeout(): that one fires after every
  // delivery, long done, and builds a DOMException each time (0.7% of the server's busy time at
  // 2,000 notifications/s).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new DOMException(`no response within ${timeoutMs} ms`, 'TimeoutError')), timeoutMs);
  timer.unref();
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers,
      body,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: abort.signal,
    });
    // Always consume the body, or the pooled connection is not reused.
    await res.body.dump();
    if (res.statusCode >= 200 && res.statusCode < 300) return { ok: true, status: res.statusCode };
    return { ok: false, code: 'error-response', httpStatus: res.statusCode, message: `the endpoint answered HTTP ${res.statusCode}` };
  } catch (err) {
    return classifyError(err, timeoutMs);
  } finally {
    clearTimeout(timer);
  }
}

function classifyError(err: unknown, timeoutMs: number): DeliveryResult {
  const e = err as { code?: string; name?: string; message?: string; cause?: unknown };
  const cause = (e.cause ?? {}) as { code?: string; message?: string; name?: string };
  if (err instanceof EndpointRefusedError || cause instanceof EndpointRefusedError) {
    return { ok: false, code: 'endpoint-refused', message: (cause instanceof EndpointRefusedError ? cause : (err as Error)).message };
  }
  const code = e.code ?? cause.code;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ENODATA') {
    return { ok: false, code: 'dns-resolution-error', message: `the endpoint's host name could not be resolved (${code})` };
  }
  if (e.name === 'TimeoutError' || e.name === 'AbortError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return { ok: false, code: 'no-response', message: `no response within ${timeoutMs} ms` };
  }
  return { ok: false, code: 'no-response', message: `the endpoint could not be reached: ${code ?? e.message ?? String(err)}` };
}
