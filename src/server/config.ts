/**
 * The one typed, validated configuration object. Sources, lowest to highest precedence: defaults,
 * environment variables (CLARION_*), command-line options. Every problem is reported at once, by name.
 */
import { isIP } from 'node:net';
import type { StorageConfig } from '../store/open-db.js';

export interface ClarionConfig {
  host: string;
  /** 0 = any free port (the chosen port is printed at start). */
  port: number;
  /** Public base URL of the FHIR endpoint; default `http://{host}:{port}/fhir`. */
  baseUrl?: string;
  storage: StorageConfig;
  /** Maximum request body size in bytes. */
  bodyLimit: number;
  search: { defaultCount: number; maxCount: number };
  feed: { pollIntervalMs: number };
  subscriptions: SubscriptionsConfig;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export interface SubscriptionsConfig {
  /** Extra topic files (R5/R4B SubscriptionTopic JSON, or R4 Basic-wrapped), loaded at start. */
  topicsDir?: string;
  /** Hosts or CIDR ranges notifications may reach although they are local/private (development, tests). */
  endpointAllow: string[];
  /** Accept plain http: endpoints (default false: https only). */
  allowHttp: boolean;
  /** Delay before the handshake after a create (ms): the 201 goes out first. */
  handshakeDelayMs: number;
  /** Delivery attempt bound when the subscription sets no backport-timeout (s). */
  defaultTimeoutSeconds: number;
  /**
   * Push-channel deliveries: subscriptions worked on at once per process (each still one notification
   * at a time), and how long a caught-up one is kept for more events before it is released (ms).
   */
  delivery: { concurrency: number; lingerMs: number };
  /**
   * Where the event writer and the delivery worker run: in this process, or in a separate `clarion
   * worker` process on the same PostgreSQL (the server then only answers requests and serves sockets).
   */
  pipeline: (typeof PIPELINE_MODES)[number];
  /** Retry backoff: first delay, cap (ms), and attempts before the subscription turns `error`. */
  retry: { initialDelayMs: number; maxDelayMs: number; maxAttempts: number };
  /** Event log retention for $events: newest N per subscription, and no older than D days. */
  eventRetention: { maxCount: number; maxAgeDays: number };
  /** The websocket channel: binding-token lifetime and per-connection limits. */
  websocket: WebSocketConfig;
  /** Outgoing mail for the email channel; absent = no email channel (email Subscriptions are refused). */
  smtp?: SmtpConfig;
}

export interface WebSocketConfig {
  /** How long a $get-ws-binding-token token is valid (s); a binding ends when its token expires. */
  tokenLifetimeSeconds: number;
  /** Largest message a client may send (bytes); a larger one closes the connection with 1009. */
  maxFrameBytes: number;
  /** Subscriptions one connection may bind at once. */
  maxBindingsPerConnection: number;
  /** A connection with no binding for this long is closed; a bound one must answer pings within it (s). */
  idleTimeoutSeconds: number;
}

export const PIPELINE_MODES = ['in-process', 'separate'] as const;

/** How the SMTP connection is protected: TLS from the first byte, a required or an opportunistic STARTTLS upgrade, or none. */
export const SMTP_TLS_MODES = ['implicit', 'starttls', 'opportunistic', 'none'] as const;

export interface SmtpConfig {
  host: string;
  port: number;
  tls: (typeof SMTP_TLS_MODES)[number];
  /** Both or neither: SMTP AUTH credentials. */
  user?: string;
  password?: string;
  /** The From address of notification mails (`clarion@example.org` or `Clarion <clarion@example.org>`). */
  from: string;
}

export const DEFAULTS = {
  host: '127.0.0.1',
  port: 8080,
  dataDir: './data',
  bodyLimit: 16 * 1024 * 1024,
  defaultCount: 20,
  maxCount: 1000,
  pollIntervalMs: 250,
  logLevel: 'info',
  handshakeDelayMs: 50,
  defaultTimeoutSeconds: 10,
  deliveryConcurrency: 16,
  deliveryLingerMs: 50,
  retryInitialDelayMs: 1000,
  retryMaxDelayMs: 300_000,
  retryMaxAttempts: 10,
  eventRetentionCount: 10_000,
  eventRetentionDays: 30,
  wsTokenLifetimeSeconds: 300,
  wsMaxFrameBytes: 65_536,
  wsMaxBindings: 100,
  wsIdleTimeoutSeconds: 60,
  smtpTls: 'starttls',
  smtpPort: 587,
  smtpImplicitTlsPort: 465,
} as const;

/** Options as given on the command line (all optional strings/booleans, validated here). */
export interface ConfigInput {
  host?: string;
  port?: string | number;
  baseUrl?: string;
  databaseUrl?: string;
  dataDir?: string;
  memory?: boolean;
  bodyLimit?: string | number;
  defaultCount?: string | number;
  maxCount?: string | number;
  pollInterval?: string | number;
  logLevel?: string;
  topicsDir?: string;
  endpointAllow?: string;
  allowHttp?: boolean | string;
  handshakeDelay?: string | number;
  deliveryTimeout?: string | number;
  deliveryConcurrency?: string | number;
  deliveryLinger?: string | number;
  pipeline?: string;
  retryInitialDelay?: string | number;
  retryMaxDelay?: string | number;
  retryMaxAttempts?: string | number;
  eventRetentionCount?: string | number;
  eventRetentionDays?: string | number;
  wsTokenLifetime?: string | number;
  wsMaxFrame?: string | number;
  wsMaxBindings?: string | number;
  wsIdleTimeout?: string | number;
  smtpHost?: string;
  smtpPort?: string | number;
  smtpTls?: string;
  smtpUser?: string;
  smtpPassword?: string;
  smtpFrom?: string;
}

/** Environment variable for each option (documented in the README). */
export const ENV_VARS: Record<keyof ConfigInput, string> = {
  host: 'CLARION_HOST',
  port: 'CLARION_PORT',
  baseUrl: 'CLARION_BASE_URL',
  databaseUrl: 'CLARION_DATABASE_URL',
  dataDir: 'CLARION_DATA_DIR',
  memory: 'CLARION_MEMORY',
  bodyLimit: 'CLARION_BODY_LIMIT',
  defaultCount: 'CLARION_DEFAULT_COUNT',
  maxCount: 'CLARION_MAX_COUNT',
  pollInterval: 'CLARION_POLL_INTERVAL_MS',
  logLevel: 'CLARION_LOG_LEVEL',
  topicsDir: 'CLARION_TOPICS_DIR',
  endpointAllow: 'CLARION_ENDPOINT_ALLOW',
  allowHttp: 'CLARION_ALLOW_HTTP',
  handshakeDelay: 'CLARION_HANDSHAKE_DELAY_MS',
  deliveryTimeout: 'CLARION_DELIVERY_TIMEOUT_S',
  deliveryConcurrency: 'CLARION_DELIVERY_CONCURRENCY',
  deliveryLinger: 'CLARION_DELIVERY_LINGER_MS',
  pipeline: 'CLARION_PIPELINE',
  retryInitialDelay: 'CLARION_RETRY_INITIAL_DELAY_MS',
  retryMaxDelay: 'CLARION_RETRY_MAX_DELAY_MS',
  retryMaxAttempts: 'CLARION_RETRY_MAX_ATTEMPTS',
  eventRetentionCount: 'CLARION_EVENT_RETENTION_COUNT',
  eventRetentionDays: 'CLARION_EVENT_RETENTION_DAYS',
  wsTokenLifetime: 'CLARION_WS_TOKEN_LIFETIME_S',
  wsMaxFrame: 'CLARION_WS_MAX_FRAME',
  wsMaxBindings: 'CLARION_WS_MAX_BINDINGS',
  wsIdleTimeout: 'CLARION_WS_IDLE_TIMEOUT_S',
  smtpHost: 'CLARION_SMTP_HOST',
  smtpPort: 'CLARION_SMTP_PORT',
  smtpTls: 'CLARION_SMTP_TLS',
  smtpUser: 'CLARION_SMTP_USER',
  smtpPassword: 'CLARION_SMTP_PASSWORD',
  smtpFrom: 'CLARION_SMTP_FROM',
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConfigError';
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export function loadConfig(cli: ConfigInput = {}, env: NodeJS.ProcessEnv = process.env): ClarionConfig {
  const problems: string[] = [];
  const pick = <K extends keyof ConfigInput>(key: K): ConfigInput[K] | string | undefined => {
    if (cli[key] !== undefined) return cli[key];
    const v = env[ENV_VARS[key]];
    return v === undefined || v === '' ? undefined : v;
  };
  const int = (key: keyof ConfigInput, label: string, dflt: number, min: number, max: number): number => {
    const raw = pick(key);
    if (raw === undefined) return dflt;
    const n = typeof raw === 'number' ? raw : Number(String(raw).trim());
    if (!Number.isInteger(n) || n < min || n > max) {
      problems.push(`${label} must be a whole number from ${min} to ${max} (got '${String(raw)}'; option --${kebab(key)} or ${ENV_VARS[key]})`);
      return dflt;
    }
    return n;
  };

  const host = String(pick('host') ?? DEFAULTS.host);
  const port = int('port', 'port', DEFAULTS.port, 0, 65535);
  const baseUrlRaw = pick('baseUrl');
  let baseUrl: string | undefined;
  if (baseUrlRaw !== undefined) {
    try {
      const u = new URL(String(baseUrlRaw));
      if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
      baseUrl = u.toString().replace(/\/$/, '');
    } catch {
      problems.push(`base URL must be an absolute http(s) URL (got '${String(baseUrlRaw)}'; --base-url or CLARION_BASE_URL)`);
    }
  }

  const databaseUrl = pick('databaseUrl');
  const memoryRaw = pick('memory');
  const memory = memoryRaw === true || memoryRaw === 'true' || memoryRaw === '1';
  const dataDir = pick('dataDir');
  let storage: StorageConfig;
  if (databaseUrl !== undefined) {
    const s = String(databaseUrl);
    if (!/^postgres(ql)?:\/\//.test(s)) problems.push(`database URL must start with postgres:// or postgresql:// (got '${s}'; --database-url or CLARION_DATABASE_URL)`);
    if (memory || dataDir !== undefined) problems.push('--database-url cannot be combined with --memory or --data-dir (choose PostgreSQL or embedded PGlite)');
    storage = { kind: 'pg', connectionString: s };
  } else if (memory) {
    if (dataDir !== undefined) problems.push('--memory cannot be combined with --data-dir');
    storage = { kind: 'pglite' };
  } else {
    storage = { kind: 'pglite', dataDir: String(dataDir ?? DEFAULTS.dataDir) };
  }

  const bodyLimit = int('bodyLimit', 'body limit (bytes)', DEFAULTS.bodyLimit, 1024, 1024 * 1024 * 1024);
  const maxCount = int('maxCount', 'maximum page size', DEFAULTS.maxCount, 1, 100_000);
  const defaultCount = int('defaultCount', 'default page size', DEFAULTS.defaultCount, 1, 100_000);
  if (defaultCount > maxCount) problems.push(`default page size (${defaultCount}) cannot exceed the maximum page size (${maxCount})`);
  const pollIntervalMs = int('pollInterval', 'change-feed poll interval (ms)', DEFAULTS.pollIntervalMs, 10, 60_000);
  const logLevel = String(pick('logLevel') ?? DEFAULTS.logLevel);
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) problems.push(`log level must be one of ${LOG_LEVELS.join(', ')} (got '${logLevel}')`);

  const topicsDir = pick('topicsDir');
  const allowRaw = pick('endpointAllow');
  const endpointAllow = allowRaw === undefined ? [] : String(allowRaw).split(',').map((x) => x.trim()).filter(Boolean);
  for (const entry of endpointAllow) {
    const [addr, bits] = entry.split('/');
    if (bits !== undefined && (!isIP(addr) || !/^\d{1,3}$/.test(bits) || Number(bits) > (isIP(addr) === 4 ? 32 : 128))) {
      problems.push(`endpoint allow-list entry '${entry}' is not a host name or CIDR range (e.g. 127.0.0.0/8, ::1/128, localhost)`);
    }
  }
  const allowHttpRaw = pick('allowHttp');
  const allowHttp = allowHttpRaw === true || allowHttpRaw === 'true' || allowHttpRaw === '1';
  const handshakeDelayMs = int('handshakeDelay', 'handshake delay (ms)', DEFAULTS.handshakeDelayMs, 0, 60_000);
  const defaultTimeoutSeconds = int('deliveryTimeout', 'delivery timeout (s)', DEFAULTS.defaultTimeoutSeconds, 1, 600);
  const delivery = {
    concurrency: int('deliveryConcurrency', 'subscriptions delivered at once', DEFAULTS.deliveryConcurrency, 1, 1000),
    lingerMs: int('deliveryLinger', 'delivery linger (ms)', DEFAULTS.deliveryLingerMs, 0, 60_000),
  };
  const pipeline = String(pick('pipeline') ?? 'in-process');
  if (!(PIPELINE_MODES as readonly string[]).includes(pipeline)) problems.push(`pipeline must be one of ${PIPELINE_MODES.join(', ')} (got '${pipeline}'; --pipeline or ${ENV_VARS.pipeline})`);
  else if (pipeline === 'separate' && storage.kind !== 'pg') {
    problems.push('--pipeline separate needs PostgreSQL (--database-url): an embedded PGlite database cannot be shared with a worker process');
  }
  const initialDelayMs = int('retryInitialDelay', 'first retry delay (ms)', DEFAULTS.retryInitialDelayMs, 1, 3_600_000);
  const maxDelayMs = int('retryMaxDelay', 'retry delay cap (ms)', DEFAULTS.retryMaxDelayMs, 1, 86_400_000);
  if (maxDelayMs < initialDelayMs) problems.push(`retry delay cap (${maxDelayMs} ms) cannot be below the first retry delay (${initialDelayMs} ms)`);
  const maxAttempts = int('retryMaxAttempts', 'delivery attempts before error', DEFAULTS.retryMaxAttempts, 1, 1000);
  const retentionCount = int('eventRetentionCount', 'events kept per subscription', DEFAULTS.eventRetentionCount, 1, 100_000_000);
  const retentionDays = int('eventRetentionDays', 'event retention (days)', DEFAULTS.eventRetentionDays, 1, 36_500);
  const websocket: WebSocketConfig = {
    tokenLifetimeSeconds: int('wsTokenLifetime', 'websocket binding-token lifetime (s)', DEFAULTS.wsTokenLifetimeSeconds, 1, 86_400),
    maxFrameBytes: int('wsMaxFrame', 'largest websocket client message (bytes)', DEFAULTS.wsMaxFrameBytes, 256, 16 * 1024 * 1024),
    maxBindingsPerConnection: int('wsMaxBindings', 'subscriptions per websocket connection', DEFAULTS.wsMaxBindings, 1, 100_000),
    idleTimeoutSeconds: int('wsIdleTimeout', 'websocket idle timeout (s)', DEFAULTS.wsIdleTimeoutSeconds, 1, 86_400),
  };
  const smtp = smtpConfig(pick, int, problems);

  if (problems.length) throw new ConfigError(problems);
  return {
    host,
    port,
    ...(baseUrl ? { baseUrl } : {}),
    storage,
    bodyLimit,
    search: { defaultCount, maxCount },
    feed: { pollIntervalMs },
    subscriptions: {
      ...(topicsDir !== undefined ? { topicsDir: String(topicsDir) } : {}),
      endpointAllow,
      allowHttp,
      handshakeDelayMs,
      defaultTimeoutSeconds,
      delivery,
      pipeline: pipeline as SubscriptionsConfig['pipeline'],
      retry: { initialDelayMs, maxDelayMs, maxAttempts },
      eventRetention: { maxCount: retentionCount, maxAgeDays: retentionDays },
      websocket,
      ...(smtp ? { smtp } : {}),
    },
    logLevel: logLevel as ClarionConfig['logLevel'],
  };
}

/** A From address: `a@b.example` or `Name <a@b.example>` (no line breaks: it becomes a mail header). */
const FROM_ADDRESS = /^(?:[^<>\r\n]*<[^\s@<>]+@[^\s@<>]+>|[^\s@<>]+@[^\s@<>]+)$/;

/** The SMTP settings of the email channel: none without a host; a host needs a From address. */
function smtpConfig(
  pick: (key: keyof ConfigInput) => string | number | boolean | undefined,
  int: (key: keyof ConfigInput, label: string, dflt: number, min: number, max: number) => number,
  problems: string[],
): SmtpConfig | undefined {
  const host = pick('smtpHost');
  const given = (['smtpPort', 'smtpTls', 'smtpUser', 'smtpPassword', 'smtpFrom'] as const).filter((k) => pick(k) !== undefined);
  if (host === undefined) {
    if (given.length) problems.push(`${given.map((k) => `--${kebab(k)}`).join(', ')} need --smtp-host (${ENV_VARS.smtpHost}), the mail server of the email channel`);
    return undefined;
  }
  const tls = String(pick('smtpTls') ?? DEFAULTS.smtpTls);
  if (!(SMTP_TLS_MODES as readonly string[]).includes(tls)) problems.push(`SMTP TLS mode must be one of ${SMTP_TLS_MODES.join(', ')} (got '${tls}'; --smtp-tls or ${ENV_VARS.smtpTls})`);
  const port = int('smtpPort', 'SMTP port', tls === 'implicit' ? DEFAULTS.smtpImplicitTlsPort : DEFAULTS.smtpPort, 1, 65535);
  const user = pick('smtpUser');
  const password = pick('smtpPassword');
  if ((user === undefined) !== (password === undefined)) problems.push(`SMTP authentication needs both a user and a password (--smtp-user/${ENV_VARS.smtpUser}, --smtp-password/${ENV_VARS.smtpPassword})`);
  const from = pick('smtpFrom');
  if (from === undefined) problems.push(`--smtp-host needs a From address for notification mails (--smtp-from or ${ENV_VARS.smtpFrom})`);
  else if (!FROM_ADDRESS.test(String(from).trim())) problems.push(`SMTP From address must be 'user@host' or 'Name <user@host>' (got '${String(from)}'; --smtp-from or ${ENV_VARS.smtpFrom})`);
  return {
    host: String(host),
    port,
    tls: tls as SmtpConfig['tls'],
    ...(user !== undefined && password !== undefined ? { user: String(user), password: String(password) } : {}),
    from: String(from ?? '').trim(),
  };
}

function kebab(s: string): string {
  return s.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
