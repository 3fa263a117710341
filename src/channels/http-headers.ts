/**
 * `channel.header` strings → HTTP headers. The IG's form is `Name: value`; fhir-candle also accepts
 * `Name=value`, so both are read (the first separator wins).
 */

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Headers a subscriber must not set: they would break or redirect the request itself. */
const RESERVED = new Set(['host', 'content-length', 'content-type', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'expect']);

export interface ParsedHeader {
  name: string;
  value: string;
}

/** Parses one header string; returns a reason if it cannot be sent. */
export function parseChannelHeader(raw: string): ParsedHeader | { error: string } {
  const colon = raw.indexOf(':');
  const eq = raw.indexOf('=');
  const at = colon >= 0 && (eq < 0 || colon < eq) ? colon : eq;
  if (at <= 0) return { error: `'${raw}' is not of the form 'Name: value'` };
  const name = raw.slice(0, at).trim();
  const value = raw.slice(at + 1).trim();
  if (!TOKEN.test(name)) return { error: `'${name}' is not a valid HTTP header name` };
  if (RESERVED.has(name.toLowerCase())) return { error: `header '${name}' is set by the server and cannot be overridden` };
  if (/[\r\n\0]/.test(value)) return { error: `the value of header '${name}' contains a line break or NUL` };
  return { name, value };
}

export function channelHeaders(raw: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const h of raw) {
    const p = parseChannelHeader(h);
    if ('error' in p) continue; // refused at create; never sent
    out[p.name] = p.value;
  }
  return out;
}
