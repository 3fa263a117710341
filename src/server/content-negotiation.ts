/**
 * Content negotiation: which request bodies are accepted and how, and the single place where the
 * response format is chosen and bodies are serialised. XML bodies become JSON here (so every handler
 * sees JSON) and XML responses are written here; nothing XML runs for a JSON request.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Resource } from 'fhir/r4.js';
import { Errors } from '../fhir/errors.js';
import { FHIR_XML_CONTENT_TYPE, resourceToXml, xmlToResource } from '../fhir/xml/fhir-xml.js';
import { MEDIA } from './fhir-exchange.js';
import { lastParam, queryPairs } from './request-parsing.js';

export type FhirFormat = 'json' | 'xml';

export interface ResponseFormat {
  format: FhirFormat;
  pretty: boolean;
}

const JSON_CONTENT_TYPE = 'application/fhir+json; charset=utf-8';

/** `_format` values and Accept media types that mean FHIR JSON. */
const JSON_NAMES = new Set(['json', 'application/json', 'application/fhir+json', 'application/json+fhir', 'text/json']);
/** Ones that mean FHIR XML. */
const XML_NAMES = new Set(['xml', 'text/xml', 'application/xml', 'application/fhir+xml', 'application/xml+fhir']);

/**
 * Registers the body parsers. Parsing JSON here (rather than with fastify's parser) gives the FHIR
 * error with the parser's message; every other media type is refused by fastify with a 415.
 */
export function registerBodyParsers(app: FastifyInstance, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  for (const type of [MEDIA.fhirJson, MEDIA.json, MEDIA.jsonPatch]) {
    app.addContentTypeParser(type, { parseAs: 'string', bodyLimit }, (_req, body, done) => {
      const text = String(body);
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, JSON.parse(text));
      } catch (err) {
        done(Errors.invalidJson({ message: (err as Error).message }), undefined);
      }
    });
  }
  for (const type of [MEDIA.fhirXml, MEDIA.xml]) {
    app.addContentTypeParser(type, { parseAs: 'string', bodyLimit }, (_req, body, done) => {
      const text = String(body);
      if (text.trim() === '') return done(null, undefined);
      try {
        done(null, xmlToResource(text));
      } catch (err) {
        done(err as Error, undefined);
      }
    });
  }
  app.addContentTypeParser(MEDIA.form, { parseAs: 'string', bodyLimit }, (_req, body, done) => done(null, String(body)));
}

/**
 * The response format: `_format` wins over Accept (browsers cannot set Accept). Throws 406 when
 * nothing acceptable can be produced.
 */
export function negotiateFormat(request: FastifyRequest): ResponseFormat {
  const params = queryPairs(request.url);
  const pretty = lastParam(params, '_pretty') === 'true';
  const explicit = lastParam(params, '_format');
  if (explicit !== undefined) {
    // An unencoded `+` (application/fhir+json) arrives as a space after query decoding.
    const name = explicit.split(';')[0].trim().toLowerCase().replace(/ /g, '+');
    if (JSON_NAMES.has(name)) return { format: 'json', pretty };
    if (XML_NAMES.has(name)) return { format: 'xml', pretty };
    throw Errors.notAcceptable({ accept: explicit }, ['_format']);
  }
  const accept = request.headers.accept;
  if (!accept) return { format: 'json', pretty };
  const format = acceptedFormat(accept);
  if (format) return { format, pretty };
  throw Errors.notAcceptable({ accept });
}

/**
 * The format the Accept header prefers: highest q; at equal q a named type beats a wildcard (all
 * types or all application types, which mean JSON), then the first listed wins. Undefined when
 * neither is acceptable.
 */
function acceptedFormat(accept: string): FhirFormat | undefined {
  let best: { format: FhirFormat; rank: number } | undefined;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';').map((s) => s.trim().toLowerCase());
    const q = params.find((p) => p.startsWith('q='));
    const weight = q === undefined ? 1 : Number(q.slice(2));
    if (!(weight > 0)) continue;
    const wildcard = type === '*/*' || type === 'application/*';
    const format: FhirFormat | undefined = JSON_NAMES.has(type) || wildcard ? 'json' : XML_NAMES.has(type) ? 'xml' : undefined;
    // q has at most three decimals (RFC 9110), so the specificity bonus never outweighs a q difference.
    const rank = weight + (wildcard ? 0 : 0.0001);
    if (format && (!best || rank > best.rank)) best = { format, rank };
  }
  return best?.format;
}

/** Like negotiateFormat, but never fails: errors must still be answered in some format. */
export function formatForError(request: FastifyRequest): ResponseFormat {
  try {
    return negotiateFormat(request);
  } catch {
    return { format: 'json', pretty: false };
  }
}

export function serialize(body: Resource, fmt: ResponseFormat): { contentType: string; payload: string } {
  // XML ignores _pretty: the converter writes it compact.
  if (fmt.format === 'xml') return { contentType: FHIR_XML_CONTENT_TYPE, payload: resourceToXml(body) };
  return { contentType: JSON_CONTENT_TYPE, payload: fmt.pretty ? JSON.stringify(body, null, 2) : JSON.stringify(body) };
}

/** Sends a FHIR body (or none) with status and headers. */
export function sendFhir(reply: FastifyReply, status: number, body: Resource | undefined, fmt: ResponseFormat, headers: Record<string, string> = {}): FastifyReply {
  reply.code(status).headers(headers);
  if (body === undefined || status === 204 || status === 304) return reply.send();
  const { contentType, payload } = serialize(body, fmt);
  return reply.type(contentType).send(payload);
}
