import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from '../../src/server/config.js';

describe('configuration', () => {
  it('defaults to embedded PGlite in ./data on 127.0.0.1:8080', () => {
    const c = loadConfig({}, {});
    expect(c.host).toBe('127.0.0.1');
    expect(c.port).toBe(8080);
    expect(c.storage).toEqual({ kind: 'pglite', dataDir: DEFAULTS.dataDir });
    expect(c.search).toEqual({ defaultCount: 20, maxCount: 1000 });
  });

  it('reads the environment, and command-line options win over it', () => {
    const env = { CLARION_PORT: '9000', CLARION_DATABASE_URL: 'postgres://u@h/db', CLARION_LOG_LEVEL: 'warn' };
    const c = loadConfig({ port: '0' }, env);
    expect(c.port).toBe(0);
    expect(c.storage).toEqual({ kind: 'pg', connectionString: 'postgres://u@h/db' });
    expect(c.logLevel).toBe('warn');
  });

  it('selects in-memory PGlite with --memory', () => {
    expect(loadConfig({ memory: true }, {}).storage).toEqual({ kind: 'pglite' });
    expect(loadConfig({}, { CLARION_MEMORY: 'true' }).storage).toEqual({ kind: 'pglite' });
  });

  it('reports every problem at once, naming the option and the environment variable', () => {
    let err: unknown;
    try {
      loadConfig({ port: '70000', databaseUrl: 'mysql://x', maxCount: '5', defaultCount: '10', logLevel: 'loud', baseUrl: 'ftp://x' }, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems;
    expect(problems).toHaveLength(5);
    expect(problems.join('\n')).toMatch(/port must be a whole number from 0 to 65535 \(got '70000'; option --port or CLARION_PORT\)/);
    expect(problems.join('\n')).toMatch(/postgres:\/\//);
    expect(problems.join('\n')).toMatch(/default page size \(10\) cannot exceed the maximum page size \(5\)/);
    expect(problems.join('\n')).toMatch(/log level must be one of/);
    expect(problems.join('\n')).toMatch(/base URL must be an absolute http\(s\) URL/);
  });

  it('refuses two storage choices at once', () => {
    expect(() => loadConfig({ databaseUrl: 'postgres://h/db', dataDir: '/tmp/x' }, {})).toThrow(/cannot be combined/);
    expect(() => loadConfig({ memory: true, dataDir: '/tmp/x' }, {})).toThrow(/cannot be combined/);
  });
});
