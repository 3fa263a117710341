/**
 * The `backport-filter-criteria` string (R4 and R4B backport) → neutral filters. Real clients send two
 * shapes and the IG documents a third (IG §8.3 / §11.6), so all are accepted:
 * - search-URL style, as in every IG example: `Encounter?patient=Patient/123&status=finished`;
 * - the documented forms: `patient=Patient/123`, `patient:not=x`, `Encounter.patient=Patient/123`.
 * `&` separates AND-ed filters (like repeated extensions); a comma inside a value stays an OR list (search
 * semantics). Names and values are percent-decoded when they are valid percent-encoding (clients send
 * both `a|b` and `a%7Cb`), and taken as written otherwise.
 */
import type { SubscriptionFilter } from '../subscriptions/subscription-model.js';

const TYPE_NAME = /^[A-Z][A-Za-z0-9]*$/;

export type FilterParse = { filters: SubscriptionFilter[] } | { error: string };

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Parses one filter string found at `source` (a wire path, kept on each filter for messages). */
export function parseFilterCriteria(text: string, source: string): FilterParse {
  const trimmed = text.trim();
  if (trimmed === '') return { error: 'is empty; expected [Type?]param[:modifier]=value[&…] or [Type.]param[:modifier]=value' };
  let urlType: string | undefined;
  let query = trimmed;
  const q = trimmed.indexOf('?');
  if (q >= 0) {
    urlType = trimmed.slice(0, q);
    query = trimmed.slice(q + 1);
    if (!TYPE_NAME.test(urlType)) return { error: `'${urlType}' before '?' is not a resource type name (e.g. Encounter?patient=Patient/123)` };
  }
  const filters: SubscriptionFilter[] = [];
  for (const part of query.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    if (eq <= 0) return { error: `'${part}' is not of the form param[:modifier]=value` };
    let name = decode(part.slice(0, eq));
    const value = decode(part.slice(eq + 1));
    if (value === '') return { error: `'${part}' has no value` };
    let resourceType = urlType;
    const dotted = /^([A-Z][A-Za-z0-9]*)\.(.+)$/.exec(name);
    if (dotted) {
      if (urlType && urlType !== dotted[1]) return { error: `'${part}' names ${dotted[1]} but the filter is for ${urlType}` };
      resourceType = dotted[1];
      name = dotted[2];
    }
    // `param:modifier`; a colon followed by a chain (`subject:Patient.name`) stays part of the name.
    const colon = name.indexOf(':');
    let modifier: string | undefined;
    if (colon >= 0 && !name.slice(colon).includes('.')) {
      modifier = name.slice(colon + 1);
      name = name.slice(0, colon);
      if (modifier === '') return { error: `'${part}' has an empty modifier` };
    }
    if (name === '') return { error: `'${part}' has no parameter name` };
    filters.push({ ...(resourceType ? { resourceType } : {}), parameter: name, ...(modifier ? { modifier } : {}), value, source });
  }
  if (filters.length === 0) return { error: `'${text}' holds no param=value pair` };
  return { filters };
}

/** The filter written back in the search-URL style of the IG examples (`Encounter?patient=Patient/123`). */
export function formatFilter(f: SubscriptionFilter): string {
  return `${f.resourceType ? `${f.resourceType}?` : ''}${f.parameter}${f.modifier ? `:${f.modifier}` : ''}=${f.value}`;
}
