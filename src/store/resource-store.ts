/**
 * Resources, their versions and the change log. Every write inserts its `resource_history` row (the
 * change record) in the same statement or transaction as the current row, so a committed write always
 * has its change and a rolled-back one never does.
 *
 * Writes use optimistic concurrency: read the current version, then `UPDATE … WHERE version_id = v`
 * together with the history insert in one statement. The history row's sequence number is drawn after
 * the row lock is taken, so for any one resource, change order is commit order.
 */
import { randomUUID } from 'node:crypto';
import type { Meta, Resource } from 'fhir/r4.js';
import { Errors, FhirError } from '../fhir/errors.js';
import { extractSearchIndex } from '../fhir/search/extract.js';
import { insertOne, InsertBatcher, type BatchCompanion, type Inserted } from './insert-batcher.js';
import type { RecentSearchIndexes } from './recent-search-indexes.js';
import type { ParsedSearch, SearchIndex, SearchPage } from '../fhir/search/types.js';
import { storedTokens } from '../fhir/search/sql-where.js';
import { executeSearch, findMatchingIds } from './search-sql.js';
import type { Clock, Db, Queryable } from './db.js';

export type WriteMethod = 'POST' | 'PUT' | 'PATCH' | 'DELETE';

/**
 * Per-type rules that run on every write of that type, whatever the path (REST, batch, transaction,
 * conditional): e.g. Subscription validation and server-owned fields. A hook may return a changed
 * resource or throw a FhirError to refuse the write. `q` is the write's transaction when there is one.
 */
export interface WriteHook {
  beforeWrite?(ctx: { resource: Resource; previous?: Resource; interaction: 'create' | 'update'; q: Queryable }): Resource | Promise<Resource>;
  beforeDelete?(ctx: { type: string; id: string; previous: Resource; q: Queryable }): void | Promise<void>;
}

export interface ResourceStoreDeps {
  clock: Clock;
  /** Write hooks by resource type. */
  hooks?: ReadonlyMap<string, WriteHook>;
  newId?: () => string;
  /** Called after every committed write (outside the transaction), e.g. to NOTIFY change consumers. */
  afterCommit?: () => void;
  /** Receives each committed version's search index, for the subscription matcher to reuse. */
  recentSearchIndexes?: RecentSearchIndexes;
  /**
   * Called before afterCommit with the change record of a create committed outside a transaction, as
   * the change feed would read it back: this process's feed consumers then need not read it.
   */
  versionCommitted?: (version: CommittedVersion) => void;
}

/** A committed change record (resource_history row), with its content. */
export interface CommittedVersion {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  previousVersionId: number | null;
  interaction: 'create' | 'update' | 'delete';
  method: string;
  lastUpdated: Date;
  content: string | null;
  previousContent: string | null;
  /** True when the change's subscription events were numbered in its own statement (the event writer skips it). */
  eventsNumbered?: boolean;
}

/** What a transaction's writes leave to do once it has committed. */
interface AfterCommit {
  fired: boolean;
  indexes: { stored: Resource; index: SearchIndex }[];
}

export interface WriteResult {
  resource: Resource;
  /** True when the write created the resource (POST, or PUT of a new or deleted id). */
  created: boolean;
}

export interface CurrentRow {
  versionId: number;
  deleted: boolean;
  lastUpdated: Date;
  resource?: Resource;
}

export interface HistoryEntry {
  seq: number;
  resourceType: string;
  id: string;
  versionId: number;
  method: WriteMethod;
  lastUpdated: Date;
  deleted: boolean;
  /** The version's content; absent for deletions. */
  resource?: Resource;
}

export interface HistoryQuery {
  type?: string;
  id?: string;
  /** Only versions updated at or after this instant. */
  since?: Date;
  /** Only versions updated before this instant (`_at` upper bound). */
  before?: Date;
  count: number;
  /** Keyset cursor: only versions with seq below this (newest first). */
  beforeSeq?: number;
}

export interface HistoryPage {
  entries: HistoryEntry[];
  total?: number;
  /** seq to continue from (pass as beforeSeq) when there are older versions. */
  nextBeforeSeq?: number;
}

const ID_PATTERN = /^[A-Za-z0-9\-.]{1,64}$/;

interface HistoryRow {
  seq: number;
  resource_type: string;
  id: string;
  version_id: number;
  method: WriteMethod;
  last_updated: Date | string;
  deleted: boolean;
  content: string | null;
}

export class ResourceStore {
  private constructor(
    private readonly db: Db,
    private readonly q: Queryable,
    private readonly deps: ResourceStoreDeps,
    private readonly inTransaction: boolean,
    private readonly pendingCommit: AfterCommit,
    /** Creates outside a transaction go through it (natural batching); absent in a transaction's store. */
    private readonly inserts?: InsertBatcher,
  ) {}

  static create(db: Db, deps: ResourceStoreDeps): ResourceStore {
    return new ResourceStore(db, db, deps, false, { fired: false, indexes: [] }, new InsertBatcher(db));
  }

  /**
   * Runs `fn` with a store bound to one database transaction (all writes commit or none do). Nested
   * calls join the outer transaction.
   */
  async transaction<T>(fn: (store: ResourceStore) => Promise<T>): Promise<T> {
    if (this.inTransaction) return fn(this);
    const pending: AfterCommit = { fired: false, indexes: [] };
    const result = await this.db.transaction((tx) => fn(new ResourceStore(this.db, tx, this.deps, true, pending)));
    // Only now: an index put for a write that then rolled back could stand for other content later.
    for (const { stored, index } of pending.indexes) this.deps.recentSearchIndexes?.put(stored, index);
    if (pending.fired) this.deps.afterCommit?.();
    return result;
  }

  /** Work to run in the statement of every batch of plain creates (BatchCompanion); undefined to stop. */
  useInsertCompanion(companion: BatchCompanion | undefined): void {
    this.inserts?.useCompanion(companion);
  }

  /** The queryable this store writes through (the transaction, inside `transaction`). */
  get queryable(): Queryable {
    return this.q;
  }

  /**
   * After a successful write statement; `written` is the version stored and its index (not for
   * deletes), with its change record when the statement returned one.
   */
  private committed(written?: { stored: Resource; index: SearchIndex; version?: CommittedVersion }): void {
    if (this.inTransaction) {
      this.pendingCommit.fired = true;
      if (written && this.deps.recentSearchIndexes) this.pendingCommit.indexes.push({ stored: written.stored, index: written.index });
      return;
    }
    // Put before waking the change consumers, so the matcher finds it (unless its events are numbered already).
    if (written && !written.version?.eventsNumbered) this.deps.recentSearchIndexes?.put(written.stored, written.index);
    if (written?.version) this.deps.versionCommitted?.(written.version);
    this.deps.afterCommit?.();
  }

  private newId(): string {
    return this.deps.newId ? this.deps.newId() : randomUUID();
  }

  // ---------------------------------------------------------------------------------------------
  // Reads

  async current(type: string, id: string): Promise<CurrentRow | undefined> {
    const { rows } = await this.q.query<{ version_id: number; deleted: boolean; last_updated: Date | string; content: string | null }>(
      'SELECT version_id, deleted, last_updated, content FROM resources WHERE resource_type = $1 AND id = $2',
      [type, id],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      versionId: row.version_id,
      deleted: row.deleted,
      lastUpdated: new Date(row.last_updated),
      ...(row.content ? { resource: JSON.parse(row.content) as Resource } : {}),
    };
  }

  /** The current version; 404 if unknown, 410 if deleted. */
  async read(type: string, id: string): Promise<Resource> {
    const row = await this.current(type, id);
    if (!row) throw Errors.notFound({ type, id });
    if (row.deleted || !row.resource) throw Errors.gone({ type, id });
    return row.resource;
  }

  /** A specific version; 404 if unknown, 410 if that version is a deletion. */
  async vread(type: string, id: string, versionId: string): Promise<Resource> {
    const vid = Number(versionId);
    if (!Number.isSafeInteger(vid) || vid < 1) throw Errors.versionNotFound({ type, id, vid: versionId });
    const { rows } = await this.q.query<{ deleted: boolean; content: string | null }>(
      'SELECT deleted, content FROM resource_history WHERE resource_type = $1 AND id = $2 AND version_id = $3',
      [type, id, vid],
    );
    const row = rows[0];
    if (!row) throw Errors.versionNotFound({ type, id, vid: versionId });
    if (row.deleted || !row.content) throw Errors.gone({ type, id });
    return JSON.parse(row.content) as Resource;
  }

  async search(search: ParsedSearch): Promise<SearchPage> {
    return executeSearch(this.q, search);
  }

  /** Ids of at most `limit` current resources matching the search (for conditional interactions). */
  async matchingIds(search: ParsedSearch, limit: number): Promise<string[]> {
    return findMatchingIds(this.q, search, limit);
  }

  async history(query: HistoryQuery): Promise<HistoryPage> {
    const where: string[] = [];
    const params: unknown[] = [];
    const add = (sql: string, value: unknown) => {
      params.push(value);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (query.type) add('resource_type = ?', query.type);
    if (query.id) add('id = ?', query.id);
    if (query.since) add('last_updated >= ?', query.since.toISOString());
    if (query.before) add('last_updated < ?', query.before.toISOString());
    const filter = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const pageWhere = [...where];
    const pageParams = [...params];
    if (query.beforeSeq !== undefined) {
      pageParams.push(query.beforeSeq);
      pageWhere.push(`seq < $${pageParams.length}`);
    }
    pageParams.push(query.count + 1);
    const { rows } = await this.q.query<HistoryRow>(
      `SELECT seq, resource_type, id, version_id, method, last_updated, deleted, content FROM resource_history
       ${pageWhere.length ? `WHERE ${pageWhere.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT $${pageParams.length}`,
      pageParams,
    );
    const more = rows.length > query.count;
    const pageRows = more ? rows.slice(0, query.count) : rows;
    let total: number | undefined;
    if (query.id || (query.beforeSeq === undefined && !more)) {
      total = query.beforeSeq === undefined && !more ? pageRows.length : undefined;
      if (total === undefined) {
        const c = await this.q.query<{ n: number }>(`SELECT count(*)::int AS n FROM resource_history ${filter}`, params);
        total = c.rows[0]?.n ?? 0;
      }
    }
    return {
      entries: pageRows.map(toHistoryEntry),
      ...(total !== undefined ? { total } : {}),
      ...(more ? { nextBeforeSeq: pageRows[pageRows.length - 1].seq } : {}),
    };
  }

  // ---------------------------------------------------------------------------------------------
  // Writes

  /** Creates a resource with a new server-assigned id (any id in the body is replaced). */
  async create(resource: Resource, options: { id?: string; method?: WriteMethod } = {}): Promise<WriteResult> {
    const id = options.id ?? this.newId();
    const checked = await this.runBeforeWrite({ ...resource, id }, undefined);
    const stored = await this.insertNew(checked, id, options.method ?? 'POST');
    if (!stored) throw Errors.alreadyExists({ type: resource.resourceType, id });
    return { resource: stored, created: true };
  }

  /**
   * Update (PUT): creates the resource if the id is unknown or deleted (update-as-create). `ifMatch`
   * is the version the client expects to replace (412 if it is not current).
   */
  async update(resource: Resource, options: { ifMatch?: number; method?: WriteMethod } = {}): Promise<WriteResult> {
    const type = resource.resourceType;
    const id = resource.id;
    if (!id) throw Errors.missingId({});
    if (!ID_PATTERN.test(id)) throw Errors.invalidId({ id }, [`${type}.id`]);
    const method = options.method ?? 'PUT';
    for (let attempt = 0; ; attempt++) {
      const cur = await this.current(type, id);
      if (options.ifMatch !== undefined) {
        const actual = cur && !cur.deleted ? String(cur.versionId) : 'none (the resource does not exist)';
        if (!cur || cur.deleted || cur.versionId !== options.ifMatch) {
          throw Errors.versionConflict({ type, id, expected: String(options.ifMatch), actual });
        }
      }
      const checked = await this.runBeforeWrite(resource, cur && !cur.deleted ? cur.resource : undefined);
      if (!cur) {
        const stored = await this.insertNew(checked, id, method);
        if (stored) return { resource: stored, created: true };
      } else {
        const stored = await this.writeVersion(checked, id, cur.versionId, cur.deleted ? 'create' : 'update', method);
        if (stored) return { resource: stored, created: cur.deleted };
      }
      // Lost a race with a concurrent write of the same id: re-read and try again (unless If-Match pinned it).
      if (options.ifMatch !== undefined || attempt >= 20) {
        const now = await this.current(type, id);
        throw Errors.versionConflict({ type, id, expected: String(options.ifMatch ?? cur?.versionId ?? 'none'), actual: String(now?.versionId ?? 'none') });
      }
    }
  }

  /**
   * Logical delete: a new version marked deleted; history is kept. Returns false when there was
   * nothing to delete (already deleted). 404 when the id never existed.
   */
  async delete(type: string, id: string, options: { ifMatch?: number } = {}): Promise<{ deleted: boolean; versionId?: number }> {
    for (let attempt = 0; ; attempt++) {
      const cur = await this.current(type, id);
      if (!cur) throw Errors.notFound({ type, id });
      if (options.ifMatch !== undefined && (cur.deleted || cur.versionId !== options.ifMatch)) {
        throw Errors.versionConflict({ type, id, expected: String(options.ifMatch), actual: cur.deleted ? 'deleted' : String(cur.versionId) });
      }
      if (cur.deleted) return { deleted: false };
      const hook = this.deps.hooks?.get(type);
      if (hook?.beforeDelete && cur.resource) await hook.beforeDelete({ type, id, previous: cur.resource, q: this.q });
      const next = cur.versionId + 1;
      const now = this.deps.clock.now().toISOString();
      const { rows } = await this.q.query<{ seq: number }>(
        `WITH r AS (
           UPDATE resources SET version_id = $3, last_updated = $4, deleted = true, content = NULL,
             idx = '{}'::jsonb, tokens = '{}'
           WHERE resource_type = $1 AND id = $2 AND version_id = $5 RETURNING 1)
         INSERT INTO resource_history (resource_type, id, version_id, previous_version_id, interaction, method, last_updated, deleted, content)
         SELECT $1, $2, $3, $5, 'delete', 'DELETE', $4, true, NULL FROM r RETURNING seq`,
        [type, id, next, now, cur.versionId],
      );
      if (rows.length === 1) {
        this.committed();
        return { deleted: true, versionId: next };
      }
      if (attempt >= 20) throw Errors.versionConflict({ type, id, expected: String(cur.versionId), actual: 'changed concurrently' });
    }
  }

  /**
   * Serialises conditional interactions with the same criteria until the transaction ends, so a search
   * followed by a write cannot race another one (call inside `transaction`).
   */
  async lockConditional(type: string, criteria: string): Promise<void> {
    await this.q.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`${type}?${criteria}`]);
  }

  /**
   * Conditional create (`If-None-Exist`): creates only if no resource matches. An advisory lock on the
   * criteria serialises concurrent conditional creates with the same criteria, so two racing requests
   * cannot both create.
   */
  async createIfNoneExist(resource: Resource, search: ParsedSearch, criteria: string): Promise<WriteResult> {
    return this.transaction(async (s) => {
      await s.lockConditional(resource.resourceType, criteria);
      const ids = await s.matchingIds(search, 2);
      if (ids.length > 1) throw Errors.multipleMatches({ type: resource.resourceType, criteria, count: ids.length });
      if (ids.length === 1) return { resource: await s.read(resource.resourceType, ids[0]), created: false };
      return s.create(resource);
    });
  }

  /** Conditional update (`PUT [type]?criteria`): create if none match, update the one match, 412 if several. */
  async conditionalUpdate(resource: Resource, search: ParsedSearch, criteria: string, options: { ifMatch?: number } = {}): Promise<WriteResult> {
    const type = resource.resourceType;
    return this.transaction(async (s) => {
      await s.lockConditional(type, criteria);
      const ids = await s.matchingIds(search, 2);
      if (ids.length > 1) throw Errors.multipleMatches({ type, criteria, count: ids.length });
      if (ids.length === 1) {
        if (resource.id && resource.id !== ids[0]) throw Errors.conditionalIdMismatch({ type, matchedId: ids[0], bodyId: resource.id }, [`${type}.id`]);
        return s.update({ ...resource, id: ids[0] }, { ...options, method: 'PUT' });
      }
      if (resource.id) return s.update(resource, { ...options, method: 'PUT' });
      return s.create(resource, { method: 'PUT' });
    });
  }

  /** Conditional delete (single): deletes the one match; nothing when none match; 412 when several. */
  async conditionalDelete(type: string, search: ParsedSearch, criteria: string): Promise<{ deleted: boolean; id?: string }> {
    return this.transaction(async (s) => {
      const ids = await s.matchingIds(search, 2);
      if (ids.length > 1) throw Errors.multipleMatches({ type, criteria, count: ids.length });
      if (ids.length === 0) return { deleted: false };
      const r = await s.delete(type, ids[0]);
      return { deleted: r.deleted, id: ids[0] };
    });
  }

  private async runBeforeWrite(resource: Resource, previous: Resource | undefined): Promise<Resource> {
    const hook = this.deps.hooks?.get(resource.resourceType);
    if (!hook?.beforeWrite) return resource;
    return hook.beforeWrite({ resource, previous, interaction: previous ? 'update' : 'create', q: this.q });
  }

  /** Inserts version 1 of a new id; undefined if the id already exists (concurrent create). */
  private async insertNew(resource: Resource, id: string, method: WriteMethod): Promise<Resource | undefined> {
    if (!ID_PATTERN.test(id)) throw Errors.invalidId({ id }, [`${resource.resourceType}.id`]);
    const now = this.deps.clock.now();
    const stored = withMeta(resource, id, 1, now);
    const index = extractSearchIndex(stored);
    const row = { resourceType: resource.resourceType, id, lastUpdated: now.toISOString(), content: JSON.stringify(stored), idx: JSON.stringify(index.idx), tokens: storedTokens(index.tokens), method };
    // In a transaction the row goes through the transaction's own connection; outside one, with
    // whatever other creates are waiting (one statement and one commit for all of them).
    let inserted: Inserted | undefined;
    if (this.inserts) inserted = await this.inserts.insert({ ...row, stored: { resource: stored, index } });
    else {
      const seq = await insertOne(this.q, row);
      inserted = seq === undefined ? undefined : { seq, companion: false };
    }
    if (inserted === undefined) return undefined;
    const version: CommittedVersion = {
      seq: inserted.seq,
      ...(inserted.companion ? { eventsNumbered: true } : {}),
      resourceType: row.resourceType,
      id,
      versionId: 1,
      previousVersionId: null,
      interaction: 'create',
      method,
      lastUpdated: now,
      content: row.content,
      previousContent: null,
    };
    this.committed({ stored, index, version });
    return stored;
  }

  /** Writes the version after `previous`; undefined if `previous` is no longer current (a race). */
  private async writeVersion(
    resource: Resource,
    id: string,
    previous: number,
    interaction: 'create' | 'update',
    method: WriteMethod,
  ): Promise<Resource | undefined> {
    const now = this.deps.clock.now();
    const next = previous + 1;
    const stored = withMeta(resource, id, next, now);
    const content = JSON.stringify(stored);
    const index = extractSearchIndex(stored);
    const { rows } = await this.q.query<{ seq: number }>(
      `WITH r AS (
         UPDATE resources SET version_id = $3, last_updated = $4, deleted = false, content = $5, idx = $6, tokens = $7
         WHERE resource_type = $1 AND id = $2 AND version_id = $8 RETURNING 1)
       INSERT INTO resource_history (resource_type, id, version_id, previous_version_id, interaction, method, last_updated, deleted, content)
       SELECT $1, $2, $3, $8, $9, $10, $4, false, $5 FROM r RETURNING seq`,
      [resource.resourceType, id, next, now.toISOString(), content, JSON.stringify(index.idx), storedTokens(index.tokens), previous, interaction, method],
    );
    if (rows.length === 0) return undefined;
    this.committed({ stored, index });
    return stored;
  }
}

/**
 * The stored form: resourceType, id and meta first (readable output), server-owned meta.versionId and
 * meta.lastUpdated replaced, everything else as the client sent it.
 */
function withMeta(resource: Resource, id: string, versionId: number, lastUpdated: Date): Resource {
  const { resourceType, id: _ignored, meta, ...rest } = resource as Resource & Record<string, unknown>;
  const newMeta: Meta = { ...(meta ?? {}), versionId: String(versionId), lastUpdated: lastUpdated.toISOString() };
  return { resourceType, id, meta: newMeta, ...rest };
}

function toHistoryEntry(row: HistoryRow): HistoryEntry {
  return {
    seq: row.seq,
    resourceType: row.resource_type,
    id: row.id,
    versionId: row.version_id,
    method: row.method,
    lastUpdated: new Date(row.last_updated),
    deleted: row.deleted,
    ...(row.content ? { resource: JSON.parse(row.content) as Resource } : {}),
  };
}

export function isFhirError(err: unknown): err is FhirError {
  return err instanceof FhirError;
}
