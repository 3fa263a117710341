/**
 * The narrative `div` travels verbatim between XML and JSON. Left to the converter, it is parsed and
 * re-serialised by xml-js, which drops whitespace-only text between tags (also inside `<pre>`), turns
 * a whitespace-only div into nothing and rewrites entities (`&quot;` → `"`): the narrative would not
 * survive a round trip, and parsing it is a large part of the conversion cost. So each div is swapped
 * for a small placeholder before conversion and the original text is put back afterwards.
 */
import { XMLValidator } from 'fast-xml-parser';
import { Errors } from '../errors.js';

const TOKEN = 'clarion-narrative-';
const XHTML_DIV_OPEN = '<div xmlns="http://www.w3.org/1999/xhtml">';
/** A placeholder div as the converter writes it (xml-js keeps attribute order and text as is). */
const PLACEHOLDER = new RegExp(`${XHTML_DIV_OPEN.replace(/[/.]/g, '\\$&')}${TOKEN}(\\d+)</div>`, 'g');
const WHOLE_PLACEHOLDER = new RegExp(`^${PLACEHOLDER.source}$`);

function placeholder(index: number): string {
  return `${XHTML_DIV_OPEN}${TOKEN}${index}</div>`;
}

/** `&name;` references XML does not define (HTML's `&nbsp;` …) make a document not well-formed. */
const UNDEFINED_ENTITY = /&(?!(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);)[^;\s<]{0,20};?/;

export function undefinedEntity(text: string): { entity: string; index: number } | undefined {
  const m = UNDEFINED_ENTITY.exec(text);
  return m ? { entity: m[0], index: m.index } : undefined;
}

// ---------------------------------------------------------------------------------------------------
// JSON → XML

/** Swaps a JSON div string for a placeholder, remembering the original in `divs`. */
export function divPlaceholder(div: string, divs: string[]): string {
  divs.push(div);
  return placeholder(divs.length - 1);
}

/** Puts the original divs into the converter's XML; each must be well-formed XHTML to be embedded. */
export function restoreXmlDivs(xml: string, divs: readonly string[]): string {
  if (divs.length === 0) return xml;
  return xml.replace(PLACEHOLDER, (_m, n: string) => {
    const div = divs[Number(n)];
    const problem = xhtmlProblem(div);
    // JSON input checks the div's shape, not XML well-formedness, so a stored narrative can be unwritable.
    if (problem) throw Errors.notRepresentableAsXml({ reason: `a narrative div is not well-formed XHTML (${problem})` });
    return div;
  });
}

const XHTML_XMLNS = /\sxmlns\s*=\s*(["'])http:\/\/www\.w3\.org\/1999\/xhtml\1/;

function xhtmlProblem(div: string): string | undefined {
  if (!div.trimStart().startsWith('<div') || !XHTML_XMLNS.test(div.slice(0, div.indexOf('>') + 1))) {
    return 'not a <div> in the XHTML namespace';
  }
  const valid = XMLValidator.validate(div);
  if (valid !== true) return valid.err.msg;
  const entity = undefinedEntity(div);
  return entity ? `undefined entity ${entity.entity}` : undefined;
}

// ---------------------------------------------------------------------------------------------------
// XML → JSON

/**
 * Replaces each outermost `<div …>…</div>` element of a well-formed document with a placeholder.
 * Only the narrative is named `div` in FHIR; a misplaced div is still caught by the content check.
 */
export function extractXmlDivs(xml: string): { text: string; divs: string[] } {
  if (!xml.includes('<div')) return { text: xml, divs: [] };
  const divs: string[] = [];
  let out = '';
  let copied = 0;
  for (const { start, end } of outermostDivs(xml)) {
    // A div outside the XHTML namespace stays in place, for the structure check to report where it is.
    if (!XHTML_XMLNS.test(xml.slice(start, tagEnd(xml, start)))) continue;
    out += xml.slice(copied, start) + placeholder(divs.length);
    divs.push(xml.slice(start, end));
    copied = end;
  }
  return { text: out + xml.slice(copied), divs };
}

/** Puts the original divs into the converted resource (in place). */
export function restoreJsonDivs<T>(value: T, divs: readonly string[]): T {
  if (divs.length === 0) return value;
  const visit = (v: unknown): void => {
    if (Array.isArray(v)) {
      v.forEach(visit);
    } else if (typeof v === 'object' && v !== null) {
      const obj = v as Record<string, unknown>;
      for (const [k, child] of Object.entries(obj)) {
        if (k === 'div' && typeof child === 'string') {
          const m = WHOLE_PLACEHOLDER.exec(child);
          if (m) obj[k] = divs[Number(m[1])];
        } else {
          visit(child);
        }
      }
    }
  };
  visit(value);
  return value;
}

/**
 * Start/end offsets of outermost `div` elements, by a tag scanner for well-formed XML: comments,
 * CDATA and processing instructions are skipped, and a `>` inside a quoted attribute does not end a tag.
 */
function outermostDivs(xml: string): { start: number; end: number }[] {
  const found: { start: number; end: number }[] = [];
  let depth = 0;
  let start = -1;
  let i = xml.indexOf('<');
  while (i >= 0 && i < xml.length) {
    let next: number;
    if (xml.startsWith('<!--', i)) next = xml.indexOf('-->', i) + 3;
    else if (xml.startsWith('<![CDATA[', i)) next = xml.indexOf(']]>', i) + 3;
    else if (xml.startsWith('<?', i) || xml.startsWith('<!', i)) next = xml.indexOf('>', i) + 1;
    else {
      next = tagEnd(xml, i);
      const closing = xml[i + 1] === '/';
      const name = /^<\/?([^\s/>]+)/.exec(xml.slice(i, i + 64))?.[1];
      if (name === 'div') {
        const selfClosing = xml[next - 2] === '/';
        if (closing) {
          depth--;
          if (depth === 0) found.push({ start, end: next });
        } else if (!selfClosing) {
          if (depth === 0) start = i;
          depth++;
        } else if (depth === 0) {
          found.push({ start: i, end: next });
        }
      }
    }
    if (next <= i) break; // unterminated construct: cannot happen in a well-formed document
    i = xml.indexOf('<', next);
  }
  return found;
}

/** Offset just after the `>` closing the tag that starts at `i`, ignoring `>` inside quotes. */
function tagEnd(xml: string, i: number): number {
  let quote = '';
  for (let j = i + 1; j < xml.length; j++) {
    const c = xml[j];
    if (quote) {
      if (c === quote) quote = '';
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '>') {
      return j + 1;
    }
  }
  return xml.length;
}
