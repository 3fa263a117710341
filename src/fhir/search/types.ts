/**
 * The search contract shared by the write path (index extraction), the REST layer (parsing), the SQL
 * search (src/store/search-sql.ts) and in-memory matching (topics' queryCriteria). One normalised
 * index format serves both SQL and in-memory evaluation, so they cannot disagree.
 */
import type { Resource } from 'fhir/r4.js';

/** What the write path stores with each current resource (columns resources.idx and resources.tokens). */
export interface SearchIndex {
  /** Normalised values per search parameter code; JSON-serialisable; format owned by extract.ts. */
  idx: Record<string, unknown>;
  /** Exact-match keys (token/reference/uri/_id) for the GIN index; format owned by extract.ts. */
  tokens: string[];
}

export type SearchParamType = 'number' | 'date' | 'string' | 'token' | 'reference' | 'composite' | 'quantity' | 'uri' | 'special';

/** One AND-ed condition: a parameter with one or more OR-ed values. */
export interface SearchFilter {
  /** Parameter code as sent (e.g. `subject`, `_lastUpdated`). */
  code: string;
  type: SearchParamType;
  modifier?: string;
  /** OR-ed values, already parsed for the parameter type (shape owned by parse.ts). */
  values: unknown[];
  /** For chained parameters (`subject:Patient.name=x`): the target type and the filter on it. */
  chain?: {
    targetType: string;
    /** All target types to search when the chain has no type modifier and several targets define the parameter. */
    targetTypes?: string[];
    filter: SearchFilter;
  };
}

export interface SortSpec {
  code: string;
  descending: boolean;
}

export interface IncludeSpec {
  sourceType: string;
  /** Search parameter code (a reference parameter), or '*' for all. */
  param: string;
  targetType?: string;
  iterate?: boolean;
}

export interface ParsedSearch {
  resourceType: string;
  filters: SearchFilter[];
  /** Page size (after applying the server's default and maximum). */
  count: number;
  sort: SortSpec[];
  include: IncludeSpec[];
  revinclude: IncludeSpec[];
  total: 'none' | 'estimate' | 'accurate';
  summary?: 'true' | 'text' | 'data' | 'count' | 'false';
  elements?: string[];
  /** Opaque keyset cursor from a previous page's link (`_cursor`). */
  cursor?: string;
  /** Parameters ignored under lenient handling (reported in an OperationOutcome entry). */
  ignored: { name: string; reason: string }[];
}

export interface SearchOptions {
  /** `Prefer: handling=strict` → unknown/unsupported parameters are errors; otherwise ignored and reported. */
  strict: boolean;
  defaultCount?: number;
  maxCount?: number;
}

export interface SearchMatch {
  resource: Resource;
  mode: 'match' | 'include' | 'outcome';
}

export interface SearchPage {
  entries: SearchMatch[];
  /** Total number of matches when requested (total != 'none') or cheap to know. */
  total?: number;
  /** Cursor for the next / previous page, if any (the REST layer turns them into links). */
  nextCursor?: string;
  prevCursor?: string;
}
