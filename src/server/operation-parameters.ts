/**
 * The input parameters of an operation call as ordered name/value pairs, wherever the client put
 * them: the query string (GET and POST), a `Parameters` body, or a form body. Only primitive values
 * are read (`value[x]` as its string form); the operations that use this take no resource or
 * multi-part parameters, and one that arrives is a client error rather than something to ignore.
 */
import { Errors } from '../fhir/errors.js';
import { MEDIA, type FhirRequest } from './fhir-exchange.js';
import { formPairs, withoutFormatParams } from './request-parsing.js';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

export function operationParameters(request: FhirRequest): [string, string][] {
  const pairs = withoutFormatParams(request.params);
  if (request.body === undefined) return pairs;
  if (typeof request.body === 'string' && request.bodyType === MEDIA.form) return [...pairs, ...withoutFormatParams(formPairs(request.body))];
  return [...pairs, ...parametersBody(request.body)];
}

function parametersBody(body: unknown): [string, string][] {
  if (!isObj(body) || body.resourceType !== 'Parameters') {
    const got = isObj(body) && typeof body.resourceType === 'string' ? `a ${body.resourceType}` : 'not a resource';
    throw Errors.invalidParameter({ name: 'resourceType', reason: `the body of an operation must be a Parameters resource, but it is ${got}` }, ['resourceType']);
  }
  const list = body.parameter === undefined ? [] : body.parameter;
  if (!Array.isArray(list)) throw Errors.invalidParameter({ name: 'parameter', reason: 'Parameters.parameter must be an array' }, ['Parameters.parameter']);
  return list.map((p, i): [string, string] => {
    const where = `Parameters.parameter[${i}]`;
    if (!isObj(p) || typeof p.name !== 'string') throw Errors.invalidParameter({ name: 'parameter', reason: `${where} has no name` }, [where]);
    const values = Object.keys(p).filter((k) => k.startsWith('value'));
    const value = values.length === 1 ? p[values[0]] : undefined;
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw Errors.invalidParameter({ name: p.name, reason: `${where} must have exactly one primitive value[x] (e.g. valueString)` }, [where]);
    }
    return [p.name, String(value)];
  });
}
