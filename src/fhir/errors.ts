/**
 * The single coded error registry (after fastify's `errors.js`): every error Clarion returns to a
 * client is created here, carries a stable code, an HTTP status and a FHIR issue type, and is sent as an
 * OperationOutcome. `docs/errors.md` lists every code; a test checks the two agree.
 */
import type { OperationOutcome, OperationOutcomeIssue } from 'fhir/r4.js';

export const ERROR_CODE_SYSTEM = 'https://clarion.dev/fhir/CodeSystem/error';

type IssueType = OperationOutcomeIssue['code'];

export interface IssueInput {
  /** What went wrong, naming the element and what is accepted. */
  diagnostics: string;
  /** FHIRPath-style location(s) of the offending element, e.g. `Patient.name[0].given`. */
  expression?: string[];
  severity?: OperationOutcomeIssue['severity'];
  code?: IssueType;
}

/** An error that becomes an OperationOutcome with the given HTTP status. */
export class FhirError extends Error {
  readonly status: number;
  readonly code: string;
  readonly issues: OperationOutcomeIssue[];
  /** Extra HTTP headers to send with the error (e.g. `Allow` for 405). */
  readonly headers: Record<string, string>;

  constructor(code: string, status: number, issues: OperationOutcomeIssue[], headers: Record<string, string> = {}) {
    super(issues.map((i) => i.diagnostics).join('; '));
    this.name = 'FhirError';
    this.code = code;
    this.status = status;
    this.issues = issues;
    this.headers = headers;
  }

  get outcome(): OperationOutcome {
    return { resourceType: 'OperationOutcome', issue: this.issues };
  }
}

export interface ErrorDefinition<P> {
  readonly code: string;
  readonly status: number;
  readonly issueType: IssueType;
  readonly description: string;
  (params: P, expression?: string[]): FhirError;
}

const registry = new Map<string, ErrorDefinition<never>>();

function define<P>(
  code: string,
  status: number,
  issueType: IssueType,
  description: string,
  message: (p: P) => string,
): ErrorDefinition<P> {
  if (registry.has(code)) throw new Error(`duplicate error code ${code}`);
  const factory = ((params: P, expression?: string[]) =>
    new FhirError(code, status, [
      {
        severity: 'error',
        code: issueType,
        details: { coding: [{ system: ERROR_CODE_SYSTEM, code }] },
        diagnostics: message(params),
        ...(expression && expression.length > 0 ? { expression } : {}),
      },
    ])) as ErrorDefinition<P>;
  Object.defineProperties(factory, {
    code: { value: code },
    status: { value: status },
    issueType: { value: issueType },
    description: { value: description },
  });
  registry.set(code, factory);
  return factory;
}

/** Several issues found at once (e.g. validation) become one error with one issue each. */
export function fhirErrorFromIssues(def: ErrorDefinition<never>, issues: IssueInput[]): FhirError {
  return new FhirError(
    def.code,
    def.status,
    issues.map((i) => ({
      severity: i.severity ?? 'error',
      code: i.code ?? def.issueType,
      details: { coding: [{ system: ERROR_CODE_SYSTEM, code: def.code }] },
      diagnostics: i.diagnostics,
      ...(i.expression && i.expression.length > 0 ? { expression: i.expression } : {}),
    })),
  );
}

export function allErrorDefinitions(): ErrorDefinition<never>[] {
  return [...registry.values()];
}

type Msg = { message: string };

// ---------------------------------------------------------------------------------------------------
// Request shape (HTTP level)
export const Errors = {
  invalidJson: define<Msg>('CLARION_INVALID_JSON', 400, 'structure', 'The request body is not valid JSON.', (p) => `The request body is not valid JSON: ${p.message}`),
  invalidXml: define<Msg>('CLARION_INVALID_XML', 400, 'structure', 'The request body is not well-formed FHIR XML.', (p) => `The request body is not well-formed XML: ${p.message}`),
  invalidFhirXml: define<{ reason: string }>('CLARION_INVALID_FHIR_XML', 400, 'structure', 'The XML is well-formed but not FHIR R4 XML that Clarion can read without losing content (unknown or repeated elements, text content, foreign namespaces, invalid values).', (p) => `The XML body is not readable FHIR XML: ${p.reason}`),
  bodyTooLarge: define<{ limit: number }>('CLARION_BODY_TOO_LARGE', 413, 'too-long', 'The request body exceeds the configured limit.', (p) => `The request body exceeds the limit of ${p.limit} bytes (configure bodyLimit to change it)`),
  unsupportedMediaType: define<{ contentType: string }>('CLARION_UNSUPPORTED_MEDIA_TYPE', 415, 'not-supported', 'The Content-Type is not one Clarion accepts.', (p) => `Content-Type '${p.contentType}' is not supported; use application/fhir+json, application/json, application/fhir+xml or application/xml (application/json-patch+json for PATCH)`),
  notRepresentableAsXml: define<{ reason: string }>('CLARION_NOT_REPRESENTABLE_AS_XML', 406, 'not-supported', 'The answer cannot be written as FHIR XML (a narrative that is not well-formed XHTML); ask for JSON.', (p) => `The answer cannot be written as FHIR XML: ${p.reason}; ask for application/fhir+json`),
  notAcceptable: define<{ accept: string }>('CLARION_NOT_ACCEPTABLE', 406, 'not-supported', 'The requested format is not one Clarion produces.', (p) => `Cannot produce '${p.accept}'; supported formats are application/fhir+json (application/json) and application/fhir+xml (application/xml)`),
  methodNotAllowed: define<{ method: string; path: string; allowed: string }>('CLARION_METHOD_NOT_ALLOWED', 405, 'not-supported', 'The HTTP method is not allowed on this path.', (p) => `${p.method} is not allowed on ${p.path}; allowed: ${p.allowed}`),
  unknownRoute: define<{ method: string; path: string }>('CLARION_UNKNOWN_ROUTE', 404, 'not-found', 'No FHIR interaction is defined at this path.', (p) => `No FHIR interaction is defined for ${p.method} ${p.path}`),
  invalidParameter: define<{ name: string; reason: string }>('CLARION_INVALID_PARAMETER', 400, 'invalid', 'A URL or header parameter has an invalid value.', (p) => `Parameter '${p.name}' is invalid: ${p.reason}`),
  badRequest: define<Msg>('CLARION_BAD_REQUEST', 400, 'invalid', 'The HTTP request is malformed (detected by the HTTP layer).', (p) => `The request is malformed: ${p.message}`),
  invalidHeader: define<{ name: string; reason: string }>('CLARION_INVALID_HEADER', 400, 'invalid', 'An HTTP header has an invalid value.', (p) => `Header '${p.name}' is invalid: ${p.reason}`),

  // -------------------------------------------------------------------------------------------------
  // Resource content
  unknownResourceType: define<{ type: string }>('CLARION_UNKNOWN_RESOURCE_TYPE', 404, 'not-supported', 'The resource type is not an R4 resource type.', (p) => `'${p.type}' is not a FHIR R4 resource type`),
  resourceTypeMismatch: define<{ expected: string; actual: string }>('CLARION_RESOURCE_TYPE_MISMATCH', 400, 'invalid', 'The body resourceType does not match the URL.', (p) => `resourceType '${p.actual}' in the body does not match '${p.expected}' in the URL`),
  idMismatch: define<{ urlId: string; bodyId: string }>('CLARION_ID_MISMATCH', 400, 'invalid', 'The body id does not match the URL id on update.', (p) => `Resource.id '${p.bodyId}' in the body does not match '${p.urlId}' in the URL`),
  missingId: define<Record<string, never>>('CLARION_MISSING_ID', 400, 'required', 'Update requires Resource.id in the body.', () => 'Resource.id is required in the body of an update (PUT [type]/[id])'),
  invalidId: define<{ id: string }>('CLARION_INVALID_ID', 400, 'value', 'A resource id does not match the FHIR id pattern.', (p) => `'${p.id}' is not a valid FHIR id ([A-Za-z0-9\\-\\.]{1,64})`),
  notAResource: define<{ reason: string }>('CLARION_NOT_A_RESOURCE', 400, 'structure', 'The body is not a FHIR resource.', (p) => `The body is not a FHIR resource: ${p.reason}`),
  validationFailed: define<Msg>('CLARION_VALIDATION_FAILED', 400, 'invalid', 'The resource does not conform to the R4 base definitions.', (p) => p.message),

  // -------------------------------------------------------------------------------------------------
  // Resource state
  notFound: define<{ type: string; id: string }>('CLARION_NOT_FOUND', 404, 'not-found', 'The resource does not exist.', (p) => `${p.type}/${p.id} is not known`),
  versionNotFound: define<{ type: string; id: string; vid: string }>('CLARION_VERSION_NOT_FOUND', 404, 'not-found', 'The resource version does not exist.', (p) => `${p.type}/${p.id}/_history/${p.vid} is not known`),
  gone: define<{ type: string; id: string }>('CLARION_GONE', 410, 'deleted', 'The resource has been deleted.', (p) => `${p.type}/${p.id} has been deleted`),
  alreadyExists: define<{ type: string; id: string }>('CLARION_ALREADY_EXISTS', 409, 'duplicate', 'A resource with this id already exists.', (p) => `${p.type}/${p.id} already exists`),
  versionConflict: define<{ type: string; id: string; expected: string; actual: string }>('CLARION_VERSION_CONFLICT', 412, 'conflict', 'If-Match does not name the current version.', (p) => `If-Match expects version ${p.expected} of ${p.type}/${p.id}, but the current version is ${p.actual}`),
  invalidIfMatch: define<{ value: string }>('CLARION_INVALID_IF_MATCH', 400, 'invalid', 'If-Match is not a weak ETag with a version id.', (p) => `If-Match '${p.value}' is not of the form W/"<versionId>"`),
  multipleMatches: define<{ type: string; criteria: string; count: number }>('CLARION_MULTIPLE_MATCHES', 412, 'multiple-matches', 'Conditional criteria matched more than one resource.', (p) => `The conditional criteria '${p.criteria}' match ${p.count} ${p.type} resources; exactly one (or none) is required`),
  conditionalNeedsCriteria: define<{ interaction: string }>('CLARION_CONDITIONAL_NO_CRITERIA', 400, 'invalid', 'A conditional interaction was sent without search criteria.', (p) => `Conditional ${p.interaction} requires search criteria in the URL`),
  conditionalIdMismatch: define<{ type: string; matchedId: string; bodyId: string }>('CLARION_CONDITIONAL_ID_MISMATCH', 400, 'invalid', 'A conditional update body id does not match the resource the criteria found.', (p) => `The criteria matched ${p.type}/${p.matchedId} but the body has id '${p.bodyId}'`),
  conditionalNoMatch: define<{ type: string; criteria: string }>('CLARION_CONDITIONAL_NO_MATCH', 404, 'not-found', 'A conditional patch matched no resource.', (p) => `The conditional criteria '${p.criteria}' match no ${p.type} resource`),
  invalidPatch: define<Msg>('CLARION_INVALID_PATCH', 400, 'invalid', 'A JSON Patch document is malformed or does not apply.', (p) => `JSON Patch cannot be applied: ${p.message}`),
  patchChangesIdentity: define<Record<string, never>>('CLARION_PATCH_IDENTITY', 400, 'invalid', 'A patch may not change resourceType or id.', () => 'JSON Patch may not change Resource.resourceType or Resource.id'),

  // -------------------------------------------------------------------------------------------------
  // Search
  unknownSearchParameter: define<{ type: string; name: string }>('CLARION_UNKNOWN_SEARCH_PARAMETER', 400, 'not-supported', 'The search parameter is not defined for the resource type (under Prefer: handling=strict).', (p) => `Search parameter '${p.name}' is not defined for ${p.type}`),
  unsupportedModifier: define<{ name: string; modifier: string; accepted: string }>('CLARION_UNSUPPORTED_MODIFIER', 400, 'not-supported', 'The search modifier is not supported for this parameter type.', (p) => `Modifier ':${p.modifier}' is not supported on '${p.name}'; accepted: ${p.accepted}`),
  unsupportedPrefix: define<{ name: string; prefix: string; accepted: string }>('CLARION_UNSUPPORTED_PREFIX', 400, 'not-supported', 'The search prefix is not supported for this parameter type.', (p) => `Prefix '${p.prefix}' is not supported on '${p.name}'; accepted: ${p.accepted}`),
  invalidSearchValue: define<{ name: string; value: string; expected: string }>('CLARION_INVALID_SEARCH_VALUE', 400, 'value', 'A search value cannot be parsed for its parameter type.', (p) => `Value '${p.value}' of search parameter '${p.name}' is invalid: expected ${p.expected}`),
  invalidChain: define<{ name: string; reason: string }>('CLARION_INVALID_CHAIN', 400, 'not-supported', 'A chained search parameter cannot be resolved.', (p) => `Chained parameter '${p.name}' is invalid: ${p.reason}`),
  invalidInclude: define<{ value: string; reason: string }>('CLARION_INVALID_INCLUDE', 400, 'value', 'An _include or _revinclude value is invalid.', (p) => `'${p.value}' is invalid: ${p.reason}`),
  invalidSort: define<{ value: string; reason: string }>('CLARION_INVALID_SORT', 400, 'value', 'A _sort value is invalid.', (p) => `_sort '${p.value}' is invalid: ${p.reason}`),
  invalidCursor: define<Record<string, never>>('CLARION_INVALID_CURSOR', 400, 'value', 'A paging cursor is malformed or was made for another search.', () => 'The paging cursor (_cursor) is malformed or belongs to a different search; start the search again'),

  // -------------------------------------------------------------------------------------------------
  // Batch / transaction
  invalidBundle: define<{ reason: string }>('CLARION_INVALID_BUNDLE', 400, 'invalid', 'A batch or transaction Bundle is malformed.', (p) => `The Bundle cannot be processed: ${p.reason}`),
  transactionEntryFailed: define<{ index: number; reason: string }>('CLARION_TRANSACTION_FAILED', 400, 'processing', 'A transaction entry failed; nothing was written.', (p) => `Transaction entry ${p.index} failed, nothing was written: ${p.reason}`),
  unresolvedReference: define<{ reference: string }>('CLARION_UNRESOLVED_REFERENCE', 400, 'not-found', 'A conditional reference in a transaction matched no resource.', (p) => `Conditional reference '${p.reference}' matches no resource`),

  // -------------------------------------------------------------------------------------------------
  // Operations
  unknownOperation: define<{ name: string; level: string }>('CLARION_UNKNOWN_OPERATION', 404, 'not-supported', 'The operation is not defined at this level.', (p) => `Operation '${p.name}' is not supported at the ${p.level} level`),

  // -------------------------------------------------------------------------------------------------
  // Topics / Subscriptions
  notATopic: define<{ reason: string }>('CLARION_NOT_A_TOPIC', 400, 'invalid', 'The resource is not a SubscriptionTopic (R4B/R5) nor an R4 Basic-wrapped topic.', (p) => `Not a subscription topic: ${p.reason}`),
  invalidTopic: define<{ url: string; message: string }>('CLARION_INVALID_TOPIC', 400, 'invalid', 'A subscription topic definition is malformed (one issue per problem).', (p) => `Topic ${p.url} is invalid: ${p.message}`),
  duplicateTopic: define<{ key: string; first: string; second: string }>('CLARION_DUPLICATE_TOPIC', 409, 'duplicate', 'Two topic definitions have the same canonical url and version.', (p) => `Topic ${p.key} is defined twice: by ${p.first} and by ${p.second}`),
  topicNotFound: define<{ url: string }>('CLARION_TOPIC_NOT_FOUND', 404, 'not-found', 'No subscription topic with this canonical url (and version) is registered.', (p) => `No subscription topic '${p.url}' is registered`),
  eventsNotRetained: define<{ id: string; requested: string; retained: string; policy: string }>('CLARION_EVENTS_NOT_RETAINED', 410, 'deleted', 'The $events range asks only for events the retention policy has already removed.', (p) => `Events ${p.requested} of Subscription/${p.id} are no longer retained; ${p.retained} (retention: ${p.policy})`),
  invalidEventRange: define<{ since: number; until: number }>('CLARION_INVALID_EVENT_RANGE', 400, 'invalid', 'The $events eventsSinceNumber is greater than eventsUntilNumber.', (p) => `eventsSinceNumber (${p.since}) is greater than eventsUntilNumber (${p.until}); both bounds are inclusive`),
  // Subscription rejections: structural problems of the wire form are 400, requests Clarion understands but does not support are 422.
  invalidSubscription: define<Msg>('CLARION_INVALID_SUBSCRIPTION', 400, 'invalid', 'A Subscription is malformed for the Subscriptions Backport IG (one issue per problem).', (p) => p.message),
  subscriptionStatusNotAllowed: define<{ status: string; accepted: string }>('CLARION_SUBSCRIPTION_STATUS', 400, 'business-rule', 'A client may only request a Subscription status of requested or off (the server sets active and error).', (p) => `Subscription.status '${p.status}' cannot be set by a client; accepted: ${p.accepted}`),
  subscriptionTopicUnknown: define<{ topic: string; known: string }>('CLARION_SUBSCRIPTION_TOPIC_UNKNOWN', 422, 'not-supported', 'Subscription.criteria names a topic this server does not support.', (p) => `Subscription.criteria '${p.topic}' is not a topic supported by this server; supported topics: ${p.known}`),
  subscriptionFilterNotAllowed: define<{ filter: string; reason: string }>('CLARION_SUBSCRIPTION_FILTER', 422, 'not-supported', 'A backport-filter-criteria filter is not allowed by the topic or cannot be evaluated.', (p) => `Filter '${p.filter}' is not supported: ${p.reason}`),
  subscriptionChannelUnsupported: define<{ channel: string; accepted: string }>('CLARION_SUBSCRIPTION_CHANNEL', 422, 'not-supported', 'The requested channel type (or custom channel) is not implemented by this server.', (p) => `Channel '${p.channel}' is not supported by this server; supported channels: ${p.accepted}`),
  subscriptionEndpointRefused: define<{ endpoint: string; reason: string }>('CLARION_SUBSCRIPTION_ENDPOINT', 422, 'business-rule', 'The channel endpoint is not usable for the channel (wrong scheme, not allowed by the endpoint policy).', (p) => `Subscription.channel.endpoint '${p.endpoint}' is refused: ${p.reason}`),
  subscriptionPayloadUnsupported: define<{ element: string; value: string; reason: string }>('CLARION_SUBSCRIPTION_PAYLOAD', 422, 'not-supported', 'The payload MIME type, fhirVersion or content level is not one this server produces.', (p) => `${p.element} '${p.value}' is not supported: ${p.reason}`),
  // Websocket channel: $get-ws-binding-token answers, and error frames sent over the socket (the status is nominal there).
  wsTokenRefused: define<{ id: string; reason: string }>('CLARION_WS_TOKEN_REFUSED', 422, 'business-rule', 'A websocket binding token cannot be issued for this Subscription (its channel is not websocket, or it is off).', (p) => `No binding token for Subscription/${p.id}: ${p.reason}`),
  wsInvalidMessage: define<{ reason: string }>('CLARION_WS_INVALID_MESSAGE', 400, 'invalid', 'A websocket message is not one Clarion understands (bind-with-token, unbind-from-token, ping; see the README).', (p) => `Websocket message not understood: ${p.reason}`),
  wsTokenInvalid: define<{ reason: string }>('CLARION_WS_TOKEN_INVALID', 401, 'security', 'A bind-with-token token is unknown, was issued to another requester, or does not cover the subscription named.', (p) => `The binding token is not valid: ${p.reason}`),
  wsTokenExpired: define<{ expiredAt: string; subscriptions: string }>('CLARION_WS_TOKEN_EXPIRED', 401, 'expired', 'A websocket binding token has expired: get a fresh one with $get-ws-binding-token and bind again (on the same connection no event is lost).', (p) => `The binding token for ${p.subscriptions} expired at ${p.expiredAt}; call $get-ws-binding-token and send bind-with-token again`),
  wsTooManyBindings: define<{ max: number }>('CLARION_WS_TOO_MANY_BINDINGS', 429, 'too-costly', 'The bind would exceed the subscriptions one websocket connection may bind (--ws-max-bindings).', (p) => `A connection may bind at most ${p.max} subscriptions; unbind some or open another connection`),
  wsSubscriptionEnded: define<{ id: string; reason: string }>('CLARION_WS_SUBSCRIPTION_ENDED', 410, 'deleted', 'A bound (or named) Subscription is off, deleted or no longer a websocket subscription; its binding ended.', (p) => `Subscription/${p.id} cannot be bound: ${p.reason}`),
  wsEventsNotRetained: define<{ id: string; from: number; to: number }>('CLARION_WS_EVENTS_NOT_RETAINED', 410, 'deleted', 'Events a resuming websocket client asked for were already removed by the retention policy; delivery continues with the oldest retained event.', (p) => `Events ${p.from}${p.to > p.from ? `–${p.to}` : ''} of Subscription/${p.id} are no longer retained and cannot be resent`),

  // -------------------------------------------------------------------------------------------------
  // Server
  unavailable: define<Msg>('CLARION_UNAVAILABLE', 503, 'transient', 'The server is starting or shutting down.', (p) => p.message),
  internal: define<{ requestId: string }>('CLARION_INTERNAL', 500, 'exception', 'An unexpected server error (a bug: please report it with the request id).', (p) => `Internal server error (request ${p.requestId}); the error has been logged`),
} as const;
