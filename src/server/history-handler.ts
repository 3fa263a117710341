/**
 * History at instance, type and system level. Pages are keyset-paged on the change sequence
 * (newest first): the next link carries the sequence to continue below, so writes made while a
 * client pages never shift or repeat entries.
 */
import { Errors } from '../fhir/errors.js';
import type { HistoryQuery, ResourceStore } from '../store/resource-store.js';
import { historyBundle } from './bundle-builders.js';
import type { FhirRequest, FhirResponse } from './fhir-exchange.js';
import { lastParam, parseCountParam, parseInstantParam, toQueryString, FORMAT_PARAMS } from './request-parsing.js';
import type { ServerContext } from './server-context.js';

const CURSOR_PARAM = '_cursor';
const KNOWN = new Set(['_since', '_count', CURSOR_PARAM, ...FORMAT_PARAMS]);

/** The cursor is opaque to clients; the prefix lets a search cursor pasted here be told apart. */
function encodeCursor(seq: number): string {
  return Buffer.from(`h1:${seq}`).toString('base64url');
}

function decodeCursor(raw: string): number {
  const m = /^h1:(\d{1,18})$/.exec(Buffer.from(raw, 'base64url').toString('utf8'));
  const seq = m ? Number(m[1]) : NaN;
  if (!Number.isSafeInteger(seq)) throw Errors.invalidCursor({}, [CURSOR_PARAM]);
  return seq;
}

export async function history(ctx: ServerContext, req: FhirRequest, store: ResourceStore): Promise<FhirResponse> {
  const { type, id } = req;
  const pairs = req.params;
  if (req.prefer.handling === 'strict') {
    const unknown = pairs.find(([k]) => !KNOWN.has(k));
    if (unknown) throw Errors.invalidParameter({ name: unknown[0], reason: 'history accepts only _since, _count and _cursor' }, [unknown[0]]);
  }
  const sinceRaw = lastParam(pairs, '_since');
  const cursorRaw = lastParam(pairs, CURSOR_PARAM);
  const query: HistoryQuery = {
    ...(type ? { type } : {}),
    ...(id ? { id } : {}),
    ...(sinceRaw !== undefined ? { since: parseInstantParam('_since', sinceRaw) } : {}),
    count: Math.max(1, parseCountParam(lastParam(pairs, '_count'), ctx.config.search.defaultCount, ctx.config.search.maxCount)),
    ...(cursorRaw !== undefined ? { beforeSeq: decodeCursor(cursorRaw) } : {}),
  };
  const page = await store.history(query);
  // An id that never existed has no history: that is a 404, not an empty Bundle.
  if (type && id && page.entries.length === 0 && cursorRaw === undefined && !(await store.current(type, id))) {
    throw Errors.notFound({ type, id });
  }

  const base = ctx.baseUrl();
  const path = [base, type, id, '_history'].filter(Boolean).join('/');
  const kept = pairs.filter(([k]) => KNOWN.has(k));
  const withoutCursor = kept.filter(([k]) => k !== CURSOR_PARAM);
  const url = (p: [string, string][]) => (p.length ? `${path}?${toQueryString(p)}` : path);
  const bundle = historyBundle({
    base,
    now: ctx.clock.now(),
    entries: page.entries,
    ...(page.total !== undefined ? { total: page.total } : {}),
    links: {
      self: url(kept),
      ...(page.nextBeforeSeq !== undefined ? { next: url([...withoutCursor, [CURSOR_PARAM, encodeCursor(page.nextBeforeSeq)]]) } : {}),
    },
  });
  return { status: 200, body: bundle };
}
