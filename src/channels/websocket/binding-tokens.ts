/**
 * Binding tokens of the websocket channel (`$get-ws-binding-token`). A token is 32 random bytes
 * (base64url); the database keeps only its SHA-256, with the requester it was issued to, the
 * subscriptions it may bind and its expiry — in the database rather than in memory so that a token
 * issued by one server process binds on any other process of the same database.
 *
 * Requester: the identity of whoever asked for the token (the authenticated principal once Clarion
 * has authentication; 'anonymous' until then). A connection that carries its own principal may only
 * redeem tokens issued to that principal; an anonymous connection — a browser cannot set headers on a
 * websocket — is authorised by the token alone, which is what the IG's token exists for.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Queryable } from '../../store/db.js';

/** The requester of a request without authentication. */
export const ANONYMOUS = 'anonymous';

export interface IssuedToken {
  token: string;
  expiresAt: Date;
  subscriptionIds: string[];
}

export interface RedeemedToken {
  subscriptionIds: string[];
  expiresAt: Date;
  requester: string;
}

export type RedeemResult =
  | { ok: true; token: RedeemedToken }
  | { ok: false; reason: 'unknown' | 'requester' }
  | { ok: false; reason: 'expired'; token: RedeemedToken };

/** Expired tokens are kept this long, so that `unbind-from-token` with an expired token still works. */
const KEEP_EXPIRED_MS = 24 * 3600_000;

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export async function issueToken(
  q: Queryable,
  input: { requester: string; subscriptionIds: string[]; now: Date; lifetimeSeconds: number },
): Promise<IssuedToken> {
  const token = randomBytes(32).toString('base64url');
  const expiresAt = new Date(input.now.getTime() + input.lifetimeSeconds * 1000);
  // Housekeeping rides on issuing (bounded by the expiry index): no separate timer, in any process.
  await q.query('DELETE FROM ws_binding_tokens WHERE expires_at < $1', [new Date(input.now.getTime() - KEEP_EXPIRED_MS).toISOString()]);
  await q.query('INSERT INTO ws_binding_tokens (token_hash, requester, subscription_ids, expires_at) VALUES ($1, $2, $3, $4)', [
    hashToken(token),
    input.requester,
    input.subscriptionIds,
    expiresAt.toISOString(),
  ]);
  return { token, expiresAt, subscriptionIds: input.subscriptionIds };
}

/** Looks a token up for a connection of `requester` (see the module comment for the requester rule). */
export async function redeemToken(q: Queryable, token: string, requester: string, now: Date): Promise<RedeemResult> {
  const { rows } = await q.query<{ requester: string; subscription_ids: string[]; expires_at: Date | string }>(
    'SELECT requester, subscription_ids, expires_at FROM ws_binding_tokens WHERE token_hash = $1',
    [hashToken(token)],
  );
  const row = rows[0];
  if (!row) return { ok: false, reason: 'unknown' };
  if (requester !== ANONYMOUS && row.requester !== requester) return { ok: false, reason: 'requester' };
  const found: RedeemedToken = { subscriptionIds: row.subscription_ids, expiresAt: new Date(row.expires_at), requester: row.requester };
  if (found.expiresAt.getTime() <= now.getTime()) return { ok: false, reason: 'expired', token: found };
  return { ok: true, token: found };
}
