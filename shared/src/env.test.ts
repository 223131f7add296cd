import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EnvError, parseEnv, parseListen } from './env.ts';

describe('environment', () => {
  it('has the documented defaults', () => {
    const env = parseEnv({});
    assert.deepEqual(env.PORTICO_ADMIN_LISTEN, { host: '127.0.0.1', port: 8001 });
    assert.deepEqual(env.PORTICO_PROXY_LISTEN, { host: '0.0.0.0', port: 8000 });
    assert.deepEqual(env.PORTICO_STATUS_LISTEN, { host: '127.0.0.1', port: 8100 });
    assert.equal(env.DATABASE_URL, undefined);
    assert.equal(env.PORTICO_DATA_DIR, './.portico');
  });
  it('drops underscore headers and waits 60 s for a buffered body by default; refuses bad values', () => {
    const env = parseEnv({});
    assert.equal(env.PORTICO_UNDERSCORES_IN_HEADERS, 'off');
    assert.equal(env.PORTICO_CLIENT_BODY_TIMEOUT_MS, 60_000);
    assert.equal(parseEnv({ PORTICO_UNDERSCORES_IN_HEADERS: 'on' }).PORTICO_UNDERSCORES_IN_HEADERS, 'on');
    assert.throws(() => parseEnv({ PORTICO_UNDERSCORES_IN_HEADERS: 'yes' }), (e: Error) => e instanceof EnvError && /PORTICO_UNDERSCORES_IN_HEADERS/.test(e.message));
    assert.throws(() => parseEnv({ PORTICO_CLIENT_BODY_TIMEOUT_MS: '1.5s' }), /PORTICO_CLIENT_BODY_TIMEOUT_MS: expected a whole number of milliseconds/);
  });
  it('parses IPv6 listen addresses', () => assert.deepEqual(parseListen('[::1]:8000'), { host: '::1', port: 8000 }));
  it('names the variable in every error', () => {
    assert.throws(() => parseEnv({ PORTICO_ADMIN_LISTEN: '127.0.0.1:99999' }), (e: Error) => e instanceof EnvError && /PORTICO_ADMIN_LISTEN: port 99999 is out of range/.test(e.message));
    assert.throws(() => parseEnv({ NATS_URL: 'http://x' }), /NATS_URL: expected a nats or tls or ws or wss URL/);
    assert.throws(() => parseEnv({ REDIS_URL: '::' }), /REDIS_URL: '::' is not a URL/);
    assert.throws(() => parseEnv({ PORTICO_LOG_LEVEL: 'loud' }), /PORTICO_LOG_LEVEL/);
  });
});
