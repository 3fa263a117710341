/**
 * A direct evaluator for the FHIRPath that topic triggers are written in — state-change tests such as
 * `(%previous.id.empty() or (%previous.status != 'finished')) and (%current.status = 'finished')`.
 * fhirpath.js evaluates them against the R4 model and costs ~5% of the server's CPU under write load
 * for this one line. The subset here: `%previous` / `%current` followed by element names, `empty()`,
 * `exists()`, `not()`, `=` / `!=` against a string literal, `and`, `or`, parentheses. Anything else is
 * not compiled (fhirpath.js evaluates it), and a value that the subset would have to type — a primitive
 * extension, a choice element, a number, a date-like string, several items — makes `evaluate` return
 * undefined, and fhirpath.js decides. test/topics/state-change-fhirpath.test.ts compares the two.
 */

type Value = unknown[];
/** Undefined: "not sure", evaluate with fhirpath.js. */
type Evaluate = (previous: Value, current: Value) => Value | undefined;

type Token = { kind: 'var' | 'name' | 'string' | 'op' | 'call'; text: string };

const TOKEN = /\s*(?:(%previous|%current)\b|'((?:[^'\\]|\\.)*)'|(!=|=|\(|\)|\.)|([A-Za-z][A-Za-z0-9_]*)(\s*\(\s*\))?)/y;

function tokenize(expression: string): Token[] | undefined {
  const out: Token[] = [];
  TOKEN.lastIndex = 0;
  while (TOKEN.lastIndex < expression.length) {
    if (/^\s*$/.test(expression.slice(TOKEN.lastIndex))) break;
    const m = TOKEN.exec(expression);
    if (!m) return undefined;
    if (m[1]) out.push({ kind: 'var', text: m[1] });
    else if (m[2] !== undefined) {
      if (m[2].includes('\\')) return undefined;
      out.push({ kind: 'string', text: m[2] });
    } else if (m[3]) out.push({ kind: 'op', text: m[3] });
    else if (m[5] !== undefined) out.push({ kind: 'call', text: m[4] });
    else out.push({ kind: 'name', text: m[4] });
  }
  return out;
}

/** The expression is outside the subset (at compile time). */
class Unsupported extends Error {}
/** This evaluation needs fhirpath.js (a value the subset does not type). */
class Bail extends Error {}

/** Three-valued Boolean of a collection: undefined = empty; anything but one Boolean bails. */
function truth(v: Value): boolean | undefined {
  if (v.length === 0) return undefined;
  if (v.length === 1 && typeof v[0] === 'boolean') return v[0];
  throw new Bail();
}

function navigate(items: Value, name: string): Value {
  const out: unknown[] = [];
  for (const item of items) {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new Bail();
    const obj = item as Record<string, unknown>;
    if (obj[`_${name}`] !== undefined) throw new Bail();
    const v = obj[name];
    if (v === undefined) {
      // A choice element (`value` → `valueQuantity`) needs the model.
      for (const key in obj) if (key.length > name.length && key.startsWith(name) && key[name.length] >= 'A' && key[name.length] <= 'Z') throw new Bail();
      continue;
    }
    if (Array.isArray(v)) out.push(...v);
    else out.push(v);
  }
  return out;
}

/** Equality of a path's value with a string literal (FHIRPath `=`); undefined = empty. */
function equalsLiteral(v: Value, literal: string): boolean | undefined {
  if (v.length === 0) return undefined;
  if (v.length > 1 || typeof v[0] !== 'string') throw new Bail();
  const s = v[0];
  // Dates, times and numbers compare by value in FHIRPath, not as text.
  if (/^[\d+-]/.test(s)) throw new Bail();
  return s === literal;
}

class Parser {
  private i = 0;

  constructor(private readonly tokens: Token[]) {}

  parse(): Evaluate {
    const e = this.or();
    if (this.i !== this.tokens.length) throw new Unsupported();
    return e;
  }

  private peek(): Token | undefined {
    return this.tokens[this.i];
  }

  private isName(text: string): boolean {
    const t = this.peek();
    return t?.kind === 'name' && t.text === text;
  }

  private or(): Evaluate {
    // FHIRPath three-valued `or`: true wins, both false is false, otherwise empty.
    return this.logical('or', () => this.and(), (x, y) => (x === true || y === true ? true : x === false && y === false ? false : undefined));
  }

  private and(): Evaluate {
    // FHIRPath three-valued `and`: false wins, both true is true, otherwise empty.
    return this.logical('and', () => this.equality(), (x, y) => (x === false || y === false ? false : x === true && y === true ? true : undefined));
  }

  /** A left-associative chain of `keyword` over `operand`s, combined by `combine` (undefined = empty). */
  private logical(
    keyword: string,
    operand: () => Evaluate,
    combine: (x: boolean | undefined, y: boolean | undefined) => boolean | undefined,
  ): Evaluate {
    let left = operand();
    while (this.isName(keyword)) {
      this.i++;
      const l = left;
      const r = operand();
      left = (p, c) => {
        const a = l(p, c);
        const b = r(p, c);
        if (a === undefined || b === undefined) return undefined;
        const z = combine(truth(a), truth(b));
        return z === undefined ? [] : [z];
      };
    }
    return left;
  }

  private equality(): Evaluate {
    const left = this.term();
    const t = this.peek();
    if (t?.kind !== 'op' || (t.text !== '=' && t.text !== '!=')) return left;
    this.i++;
    const lit = this.peek();
    if (lit?.kind !== 'string') throw new Unsupported();
    this.i++;
    const negate = t.text === '!=';
    return (p, c) => {
      const v = left(p, c);
      if (v === undefined) return undefined;
      const eq = equalsLiteral(v, lit.text);
      return eq === undefined ? [] : [negate ? !eq : eq];
    };
  }

  private term(): Evaluate {
    const t = this.peek();
    if (t?.kind === 'op' && t.text === '(') {
      this.i++;
      const inner = this.or();
      const close = this.peek();
      if (close?.kind !== 'op' || close.text !== ')') throw new Unsupported();
      this.i++;
      return this.functions(inner);
    }
    if (t?.kind !== 'var') throw new Unsupported();
    this.i++;
    const names: string[] = [];
    let e: Evaluate = t.text === '%previous' ? (p) => p : (_p, c) => c;
    while (this.peek()?.kind === 'op' && this.peek()?.text === '.' && this.tokens[this.i + 1]?.kind === 'name') {
      const name = this.tokens[this.i + 1].text;
      if (name === 'resourceType' || name === 'and' || name === 'or') throw new Unsupported();
      names.push(name);
      this.i += 2;
    }
    if (names.length > 0) {
      const base = e;
      e = (p, c) => {
        let v = base(p, c);
        if (v === undefined) return undefined;
        for (const n of names) v = navigate(v, n);
        return v;
      };
    }
    return this.functions(e);
  }

  private functions(e: Evaluate): Evaluate {
    let out = e;
    while (this.peek()?.kind === 'op' && this.peek()?.text === '.' && this.tokens[this.i + 1]?.kind === 'call') {
      const fn = this.tokens[this.i + 1].text;
      this.i += 2;
      const inner = out;
      if (fn === 'empty') out = (p, c) => { const v = inner(p, c); return v && [v.length === 0]; };
      else if (fn === 'exists') out = (p, c) => { const v = inner(p, c); return v && [v.length > 0]; };
      else if (fn === 'not') {
        out = (p, c) => {
          const v = inner(p, c);
          if (v === undefined) return undefined;
          const x = truth(v);
          return x === undefined ? [] : [!x];
        };
      } else throw new Unsupported();
    }
    return out;
  }
}

/**
 * Compiles `expression` (after the topic's `|` → `or` rewrite) if it is in the subset; the function
 * returns the FHIRPath result, or undefined where fhirpath.js has to decide.
 */
export function compileStateChangeFhirPath(expression: string): ((previous: unknown, current: unknown) => unknown[] | undefined) | undefined {
  const tokens = tokenize(expression);
  if (!tokens || tokens.length === 0) return undefined;
  let evaluate: Evaluate;
  try {
    evaluate = new Parser(tokens).parse();
  } catch (err) {
    if (err instanceof Unsupported) return undefined;
    throw err;
  }
  return (previous, current) => {
    try {
      return evaluate(previous === undefined ? [] : [previous], current === undefined ? [] : [current]);
    } catch (err) {
      if (err instanceof Bail) return undefined;
      throw err;
    }
  };
}
