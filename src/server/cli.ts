#!/usr/bin/env node
/**
 * `clarion` command line. `clarion serve` (the default) starts the server; `clarion worker` runs the
 * event writer and the delivery worker for servers started with `--pipeline separate`; `clarion
 * migrate` applies migrations and exits.
 */
import { Command, Option } from 'commander';
import { openDb } from '../store/open-db.js';
import { createClarion } from './app.js';
import { ConfigError, DEFAULTS, ENV_VARS, loadConfig, type ConfigInput } from './config.js';

function storageOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option('--database-url <url>', `PostgreSQL connection string (env ${ENV_VARS.databaseUrl})`))
    .addOption(new Option('--data-dir <dir>', `embedded PGlite data directory (env ${ENV_VARS.dataDir}; default ${DEFAULTS.dataDir})`))
    .addOption(new Option('--memory', `embedded PGlite in memory: nothing is kept (env ${ENV_VARS.memory}=true)`));
}

const program = new Command('clarion').description('Clarion: a FHIR R4 server with topic-based Subscriptions').showHelpAfterError();

/** The options of `serve` and `worker` (one configuration, so both read the same settings). */
function serverOptions(cmd: Command): Command {
  return storageOptions(cmd)
    .addOption(new Option('--host <host>', `address to listen on (env ${ENV_VARS.host}; default ${DEFAULTS.host})`))
    .addOption(new Option('-p, --port <port>', `port, 0 = any free port (env ${ENV_VARS.port}; default ${DEFAULTS.port})`))
    .addOption(new Option('--base-url <url>', `public FHIR base URL (env ${ENV_VARS.baseUrl}; default http://host:port/fhir)`))
    .addOption(new Option('--body-limit <bytes>', `maximum request body (env ${ENV_VARS.bodyLimit}; default ${DEFAULTS.bodyLimit})`))
    .addOption(new Option('--default-count <n>', `default search page size (env ${ENV_VARS.defaultCount}; default ${DEFAULTS.defaultCount})`))
    .addOption(new Option('--max-count <n>', `maximum search page size (env ${ENV_VARS.maxCount}; default ${DEFAULTS.maxCount})`))
    .addOption(new Option('--poll-interval <ms>', `change-feed safety-net poll (env ${ENV_VARS.pollInterval}; default ${DEFAULTS.pollIntervalMs})`))
    .addOption(new Option('--log-level <level>', `fatal|error|warn|info|debug|trace|silent (env ${ENV_VARS.logLevel}; default ${DEFAULTS.logLevel})`))
    .addOption(new Option('--topics-dir <dir>', `extra SubscriptionTopic files (env ${ENV_VARS.topicsDir})`))
    .addOption(new Option('--endpoint-allow <list>', `comma-separated hosts/CIDRs notifications may reach although local/private (env ${ENV_VARS.endpointAllow})`))
    .addOption(new Option('--allow-http', `accept plain http: notification endpoints (env ${ENV_VARS.allowHttp}=true)`))
    .addOption(new Option('--handshake-delay <ms>', `delay before the rest-hook handshake (env ${ENV_VARS.handshakeDelay}; default ${DEFAULTS.handshakeDelayMs})`))
    .addOption(new Option('--delivery-timeout <s>', `attempt bound without backport-timeout (env ${ENV_VARS.deliveryTimeout}; default ${DEFAULTS.defaultTimeoutSeconds})`))
    .addOption(new Option('--delivery-concurrency <n>', `subscriptions delivered at once per process (env ${ENV_VARS.deliveryConcurrency}; default ${DEFAULTS.deliveryConcurrency})`))
    .addOption(new Option('--delivery-linger <ms>', `how long a caught-up subscription is kept for more events (env ${ENV_VARS.deliveryLinger}; default ${DEFAULTS.deliveryLingerMs})`))
    .addOption(new Option('--retry-initial-delay <ms>', `first retry delay (env ${ENV_VARS.retryInitialDelay}; default ${DEFAULTS.retryInitialDelayMs})`))
    .addOption(new Option('--retry-max-delay <ms>', `retry delay cap (env ${ENV_VARS.retryMaxDelay}; default ${DEFAULTS.retryMaxDelayMs})`))
    .addOption(new Option('--retry-max-attempts <n>', `failed attempts before status error (env ${ENV_VARS.retryMaxAttempts}; default ${DEFAULTS.retryMaxAttempts})`))
    .addOption(new Option('--event-retention-count <n>', `events kept per subscription for $events (env ${ENV_VARS.eventRetentionCount}; default ${DEFAULTS.eventRetentionCount})`))
    .addOption(new Option('--event-retention-days <d>', `days events are kept for $events (env ${ENV_VARS.eventRetentionDays}; default ${DEFAULTS.eventRetentionDays})`))
    .addOption(new Option('--ws-token-lifetime <s>', `websocket binding-token lifetime (env ${ENV_VARS.wsTokenLifetime}; default ${DEFAULTS.wsTokenLifetimeSeconds})`))
    .addOption(new Option('--ws-max-frame <bytes>', `largest websocket client message (env ${ENV_VARS.wsMaxFrame}; default ${DEFAULTS.wsMaxFrameBytes})`))
    .addOption(new Option('--ws-max-bindings <n>', `subscriptions one websocket connection may bind (env ${ENV_VARS.wsMaxBindings}; default ${DEFAULTS.wsMaxBindings})`))
    .addOption(new Option('--ws-idle-timeout <s>', `close websocket connections idle this long (env ${ENV_VARS.wsIdleTimeout}; default ${DEFAULTS.wsIdleTimeoutSeconds})`))
    .addOption(new Option('--smtp-host <host>', `mail server for email Subscriptions; without it the email channel is off (env ${ENV_VARS.smtpHost})`))
    .addOption(new Option('--smtp-port <port>', `SMTP port (env ${ENV_VARS.smtpPort}; default ${DEFAULTS.smtpPort}, ${DEFAULTS.smtpImplicitTlsPort} with --smtp-tls implicit)`))
    .addOption(new Option('--smtp-tls <mode>', `implicit|starttls|opportunistic|none (env ${ENV_VARS.smtpTls}; default ${DEFAULTS.smtpTls})`))
    .addOption(new Option('--smtp-user <user>', `SMTP AUTH user (env ${ENV_VARS.smtpUser})`))
    .addOption(new Option('--smtp-password <password>', `SMTP AUTH password; prefer the environment (env ${ENV_VARS.smtpPassword})`))
    .addOption(new Option('--smtp-from <address>', `From address of notification mails, required with --smtp-host (env ${ENV_VARS.smtpFrom})`));
}

serverOptions(program.command('serve', { isDefault: true }).description('start the FHIR server'))
  .addOption(new Option('--pipeline <mode>', `in-process|separate: run the event writer and delivery here, or in a \`clarion worker\` beside it (PostgreSQL only) (env ${ENV_VARS.pipeline}; default in-process)`))
  .action(async (opts: ConfigInput) => {
    const config = loadConfig(opts);
    const clarion = await createClarion(config);
    const url = await clarion.listen();
    // The one line scripts wait for: where the server is.
    process.stdout.write(`Clarion listening at ${url} (storage: ${describeStorage(config.storage)})\n`);
    stopOnSignals(clarion);
  });

serverOptions(program.command('worker').description('run the event writer and the delivery worker for servers started with --pipeline separate (PostgreSQL)'))
  .action(async (opts: ConfigInput) => {
    const config = loadConfig({ ...opts, pipeline: 'in-process' });
    if (config.storage.kind !== 'pg') throw new ConfigError(['clarion worker needs PostgreSQL (--database-url): it shares the database of the servers it works for']);
    const clarion = await createClarion(config);
    // The one line scripts wait for (no port: a worker answers no requests).
    process.stdout.write(`Clarion worker running (storage: ${describeStorage(config.storage)})\n`);
    stopOnSignals(clarion);
  });

function stopOnSignals(clarion: Awaited<ReturnType<typeof createClarion>>): void {
  const shutdown = (signal: string) => {
    clarion.logger.info({ signal }, 'shutting down');
    clarion.close().then(
      () => process.exit(0),
      (err: unknown) => {
        clarion.logger.error({ err }, 'error during shutdown');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => shutdown('SIGINT'));
  process.once('SIGTERM', () => shutdown('SIGTERM'));
}

storageOptions(program.command('migrate').description('apply database migrations and exit')).action(async (opts: ConfigInput) => {
  const config = loadConfig(opts);
  const db = await openDb(config.storage);
  await db.close();
  process.stdout.write(`Migrations applied (storage: ${describeStorage(config.storage)})\n`);
});

function describeStorage(s: ReturnType<typeof loadConfig>['storage']): string {
  if (s.kind === 'pg') return `PostgreSQL ${s.connectionString.replace(/\/\/[^@/]*@/, '//***@')}`;
  return s.dataDir ? `PGlite at ${s.dataDir}` : 'PGlite in memory';
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError) {
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
