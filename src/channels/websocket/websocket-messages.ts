/**
 * The websocket message protocol (documented in the README, Subscriptions → websocket channel).
 *
 * Client → server, text frames; each command in the forms real clients send:
 * - `bind-with-token <token>`, `bind-with-token: <token>` (both in the IG's diagrams), or JSON
 *   `{"type":"bind-with-token","payload":{"token":"…"}}` (Medplum and others). Only the JSON form can
 *   resume: `"lastEventNumber": 12` (every subscription of the token) or `{"<subscription id>": 12, …}`
 *   (per subscription; an id the token does not cover is refused) — events after that number are sent
 *   first, in order, then live ones.
 * - `unbind-from-token <token>` / `unbind-from-token: <token>` / JSON with the token: unbinds the
 *   token's subscriptions from this connection; without a token, unbinds every subscription.
 * - `ping` / `{"type":"ping"}` → `{"type":"pong"}` (an application-level keepalive some clients use).
 *
 * Server → client: notification Bundles (handshake, heartbeat, event-notification) in the
 * subscription's MIME type, and OperationOutcome frames: errors (coded CLARION_WS_*), warnings, and
 * `information` acknowledgements of unbinds.
 */
import type { OperationOutcome } from 'fhir/r4.js';
import { Errors, type FhirError } from '../../fhir/errors.js';

/** Resume points: one for every subscription of the token, or per subscription id. */
export type ResumeFrom = { kind: 'all'; after: number } | { kind: 'each'; after: ReadonlyMap<string, number> };

export type ClientMessage =
  | { type: 'bind'; token: string; resume?: ResumeFrom }
  | { type: 'unbind'; token?: string }
  | { type: 'ping' };

const BIND = 'bind-with-token';
const UNBIND = 'unbind-from-token';
/** Tokens Clarion issues are base64url; anything printable without spaces is looked up (and fails cleanly). */
const TOKEN = /^[\x21-\x7e]{1,512}$/;

const invalid = (reason: string): FhirError => Errors.wsInvalidMessage({ reason });

/** Parses one text message; throws CLARION_WS_INVALID_MESSAGE (a FhirError) for anything else. */
export function parseClientMessage(text: string): ClientMessage {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) return parseJson(trimmed);
  const m = /^([a-z-]+):?(?:\s+(.*))?$/s.exec(trimmed);
  const command = m?.[1];
  const arg = m?.[2]?.trim();
  if (command === 'ping' && arg === undefined) return { type: 'ping' };
  if (command === BIND) {
    if (!arg) throw invalid(`${BIND} needs a token: '${BIND} <token>'`);
    return { type: 'bind', token: checkToken(arg) };
  }
  if (command === UNBIND) return arg ? { type: 'unbind', token: checkToken(arg) } : { type: 'unbind' };
  throw invalid(`expected '${BIND} <token>', '${BIND}: <token>', '${UNBIND} <token>', 'ping' or a JSON message {"type":"${BIND}","payload":{"token":"…"}}; got '${preview(trimmed)}'`);
}

function parseJson(text: string): ClientMessage {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch (err) {
    throw invalid(`not valid JSON (${(err as Error).message})`);
  }
  if (!isObj(msg) || typeof msg.type !== 'string') throw invalid('a JSON message must be an object with a "type" string');
  const payload = msg.payload === undefined ? {} : msg.payload;
  if (!isObj(payload)) throw invalid('"payload" must be an object');
  const token = payload.token;
  if (token !== undefined && typeof token !== 'string') throw invalid('"payload.token" must be a string');
  switch (msg.type) {
    case 'ping':
      return { type: 'ping' };
    case UNBIND:
      return token ? { type: 'unbind', token: checkToken(token) } : { type: 'unbind' };
    case BIND: {
      if (!token) throw invalid(`${BIND} needs "payload.token"`);
      const resume = parseResume(payload.lastEventNumber);
      return { type: 'bind', token: checkToken(token), ...(resume ? { resume } : {}) };
    }
    default:
      throw invalid(`unknown message type '${preview(msg.type)}'; accepted: ${BIND}, ${UNBIND}, ping`);
  }
}

function parseResume(raw: unknown): ResumeFrom | undefined {
  if (raw === undefined || raw === null) return undefined;
  if (isObj(raw)) {
    const after = new Map<string, number>();
    for (const [id, v] of Object.entries(raw)) after.set(id, eventNumber(v, `lastEventNumber.${id}`));
    return { kind: 'each', after };
  }
  return { kind: 'all', after: eventNumber(raw, 'lastEventNumber') };
}

/** Event numbers are strings in R4/R4B notifications; a client may echo either form. */
function eventNumber(v: unknown, where: string): number {
  const n = typeof v === 'string' && /^\d{1,16}$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw invalid(`"payload.${where}" must be a whole number ≥ 0 (the last event number received), got ${preview(JSON.stringify(v) ?? '')}`);
  return n;
}

function checkToken(token: string): string {
  if (!TOKEN.test(token)) throw invalid('the token must be 1–512 printable characters without spaces');
  return token;
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function preview(s: string): string {
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

// -------------------------------------------------------------------------------------------------
// Server frames

/** An error (or, with severity, a warning) as the OperationOutcome JSON frame the client receives. */
export function outcomeFrame(err: FhirError, severity: 'error' | 'warning' = 'error'): string {
  const outcome: OperationOutcome = { resourceType: 'OperationOutcome', issue: err.issues.map((i) => ({ ...i, severity })) };
  return JSON.stringify(outcome);
}

/** An acknowledgement (e.g. of an unbind) as an informational OperationOutcome frame. */
export function informationFrame(diagnostics: string): string {
  const outcome: OperationOutcome = { resourceType: 'OperationOutcome', issue: [{ severity: 'information', code: 'informational', diagnostics }] };
  return JSON.stringify(outcome);
}

export const PONG_FRAME = JSON.stringify({ type: 'pong' });
