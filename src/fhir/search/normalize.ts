/**
 * Value normalisation shared by index extraction (extract.ts) and request parsing (parse.ts), so the
 * stored index and the parsed search values are always produced by the same code.
 */

/**
 * Case-, accent- and whitespace-insensitive form of a string: NFD, combining marks removed, lower case,
 * leading and trailing whitespace removed and runs of whitespace (spaces, tabs, line breaks) made one
 * space — so `desc` finds `"  Description:\r\n…"` and `peter james` finds `"Peter  James"`.
 */
export function normalizeString(s: string): string {
  const ws = /\s/.test(s) ? s.trim().replace(/\s+/g, ' ') : s;
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7f]*$/.test(ws)) return ws.toLowerCase();
  return ws.normalize('NFD').replace(/\p{M}/gu, '').toLowerCase();
}

/** Escapes `\` and `|` in one component of a token/reference key, so keys are unambiguous. */
export function escapeKeyPart(s: string): string {
  return s.includes('\\') || s.includes('|') ? s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|') : s;
}

/** Key suffixes for a coded value (see the format at the top of extract.ts). */
export function tokenKeys(system: string | undefined, code: string | undefined, out: string[]): void {
  if (code !== undefined && code !== '') {
    out.push(`=${escapeKeyPart(code)}`);
    out.push(`=${escapeKeyPart(system ?? '')}|${escapeKeyPart(code)}`);
  }
  if (system) out.push(`@${escapeKeyPart(system)}`);
}

// ---------------------------------------------------------------------------------------------------
// Dates

/** Sentinels for open-ended ranges (JSON has no infinity); far outside any real date or quantity. */
export const RANGE_MIN = -1e300;
export const RANGE_MAX = 1e300;

const DATE_RE =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

/**
 * The implicit range of a FHIR date/dateTime/instant (or search date value) as epoch milliseconds,
 * `[lo, hiExclusive)`: `2020` covers the whole year, `2020-03-04T10:00` a minute. Values without a time
 * zone are taken as UTC. Returns undefined when the value is not a valid date.
 */
export function dateRange(value: string): [number, number] | undefined {
  const m = DATE_RE.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, tz] = m;
  const year = Number(y);
  const month = mo ? Number(mo) : 1;
  const day = d ? Number(d) : 1;
  if (month < 1 || month > 12 || day < 1 || day > 31) return undefined;
  if (h !== undefined && (Number(h) > 24 || Number(mi) > 59 || (s !== undefined && Number(s) > 60))) return undefined;
  let offsetMs = 0;
  if (tz && tz !== 'Z') {
    const sign = tz[0] === '-' ? -1 : 1;
    offsetMs = sign * (Number(tz.slice(1, 3)) * 60 + Number(tz.slice(4, 6))) * 60_000;
  }
  const base = (yy: number, mm: number, dd: number, hh = 0, mn = 0, ss = 0, ms = 0): number => {
    const t = Date.UTC(yy, mm - 1, dd, hh, mn, ss, ms);
    // Date.UTC maps years 0..99 to 1900..1999; fix them up.
    return yy < 100 ? new Date(t).setUTCFullYear(yy) : t;
  };
  if (!mo) return [base(year, 1, 1), base(year + 1, 1, 1)];
  if (!d) return [base(year, month, 1), month === 12 ? base(year + 1, 1, 1) : base(year, month + 1, 1)];
  if (h === undefined) {
    const lo = base(year, month, day);
    if (new Date(lo).getUTCDate() !== day) return undefined; // e.g. 2021-02-30
    return [lo, lo + 86_400_000];
  }
  if (new Date(base(year, month, day)).getUTCDate() !== day) return undefined;
  if (s === undefined) {
    const lo = base(year, month, day, Number(h), Number(mi)) - offsetMs;
    return [lo, lo + 60_000];
  }
  if (frac === undefined) {
    const lo = base(year, month, day, Number(h), Number(mi), Number(s)) - offsetMs;
    return [lo, lo + 1000];
  }
  const ms = Number(frac.slice(0, 3).padEnd(3, '0'));
  const lo = base(year, month, day, Number(h), Number(mi), Number(s), ms) - offsetMs;
  return [lo, lo + (frac.length >= 3 ? 1 : frac.length === 2 ? 10 : 100)];
}

// ---------------------------------------------------------------------------------------------------
// Decimals

const DECIMAL_RE = /^([+-]?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

export interface DecimalRange {
  /** The value itself, as a decimal string (exact, for SQL numeric) */
  value: string;
  /** Lower / upper bound of the implicit precision range, `[lo, hi)`, as exact decimal strings. */
  lo: string;
  hi: string;
}

/**
 * Parses a search decimal with its implicit precision range: `100` → [99.5, 100.5), `100.0` →
 * [99.95, 100.05), `1e2` → [50, 150). Bounds are exact decimal strings (`995e-1`), so SQL numeric and
 * JavaScript numbers (nearest double) see the same values.
 */
export function decimalRange(text: string): DecimalRange | undefined {
  const m = DECIMAL_RE.exec(text);
  if (!m) return undefined;
  const [, sign, int, frac = '', exp] = m;
  const scale = frac.length - (exp ? Number(exp) : 0); // value = mantissa * 10^-scale
  if (!Number.isFinite(scale) || Math.abs(scale) > 400) return undefined;
  const mantissa = BigInt(`${sign}${int}${frac}`);
  const lo = mantissa * 10n - 5n;
  const hi = mantissa * 10n + 5n;
  const e = -(scale + 1);
  return { value: `${mantissa}e${-scale}`, lo: `${lo}e${e}`, hi: `${hi}e${e}` };
}
