import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
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
  it('runs one DP worker per core unless PORTICO_WORKERS says how many; refuses anything but 1 to 1024', () => {
    assert.equal(parseEnv({}).PORTICO_WORKERS, availableParallelism());
    assert.equal(parseEnv({ PORTICO_WORKERS: '1' }).PORTICO_WORKERS, 1);
    assert.equal(parseEnv({ PORTICO_WORKERS: '16' }).PORTICO_WORKERS, 16);
    for (const bad of ['0', '-2', '1.5', 'auto', '1025', '0x2', '1e2', ' ']) {
      assert.throws(() => parseEnv({ PORTICO_WORKERS: bad }), (e: Error) => e instanceof EnvError && /PORTICO_WORKERS: expected a whole number of worker processes from 1 to 1024/.test(e.message), bad);
    }
  });
  it('runs the CP at nice 10 unless PORTICO_CP_NICE says otherwise; refuses anything but 0 to 19 written as digits', () => {
    assert.equal(parseEnv({}).PORTICO_CP_NICE, 10);
    assert.equal(parseEnv({ PORTICO_CP_NICE: '0' }).PORTICO_CP_NICE, 0);
    assert.equal(parseEnv({ PORTICO_CP_NICE: ' 19 ' }).PORTICO_CP_NICE, 19);
    for (const bad of ['-1', '20', '1.5', 'abc', '0x0a', '1e1', ' ', '1\n0', '1\r\n', '1\0', '\uff11\uff10', '9'.repeat(10 * 1024 * 1024)]) {
      assert.throws(() => parseEnv({ PORTICO_CP_NICE: bad }), (e: Error) => e instanceof EnvError && /PORTICO_CP_NICE: expected a nice value from 0 to 19, got '/.test(e.message) && e.message.length < 300, JSON.stringify(bad.slice(0, 10)));
    }
  });
  it('parses IPv6 listen addresses', () => assert.deepEqual(parseListen('[::1]:8000'), { host: '::1', port: 8000 }));
  it('names the variable in every error', () => {
    assert.throws(() => parseEnv({ PORTICO_ADMIN_LISTEN: '127.0.0.1:99999' }), (e: Error) => e instanceof EnvError && /PORTICO_ADMIN_LISTEN: port 99999 is out of range/.test(e.message));
    assert.throws(() => parseEnv({ NATS_URL: 'http://x' }), /NATS_URL: expected a nats or tls or ws or wss URL/);
    assert.throws(() => parseEnv({ REDIS_URL: '::' }), /REDIS_URL: '::' is not a URL/);
    assert.throws(() => parseEnv({ PORTICO_LOG_LEVEL: 'loud' }), /PORTICO_LOG_LEVEL/);
  });
  it('trusts no proxy by default and reads X-Real-IP without recursion', () => {
    const env = parseEnv({});
    assert.equal(env.PORTICO_TRUSTED_IPS.isEmpty, true);
    assert.equal(env.PORTICO_REAL_IP_HEADER, 'x-real-ip');
    assert.equal(env.PORTICO_REAL_IP_RECURSIVE, false);
  });
  it('parses the real-IP settings once into a matcher, a lower-case header name and a flag', () => {
    const env = parseEnv({ PORTICO_TRUSTED_IPS: ' 10.0.0.0/8, 2001:db8::/32 ,192.0.2.1', PORTICO_REAL_IP_HEADER: 'X-Forwarded-For', PORTICO_REAL_IP_RECURSIVE: 'on' });
    assert.deepEqual(env.PORTICO_TRUSTED_IPS.entries, ['10.0.0.0/8', '2001:db8::/32', '192.0.2.1/32']);
    assert.equal(env.PORTICO_TRUSTED_IPS.contains('10.1.2.3'), true);
    assert.equal(env.PORTICO_REAL_IP_HEADER, 'x-forwarded-for');
    assert.equal(env.PORTICO_REAL_IP_RECURSIVE, true);
    const all = parseEnv({ PORTICO_TRUSTED_IPS: '0.0.0.0/0,::/0' });
    assert.equal(all.PORTICO_TRUSTED_IPS.contains('203.0.113.1') && all.PORTICO_TRUSTED_IPS.contains('2001:db8::1'), true);
  });
  it('refuses a bad trusted entry, proxy_protocol and a bad header, naming the variable', () => {
    assert.throws(() => parseEnv({ PORTICO_TRUSTED_IPS: '10.0.0.0/8,10.0.0.0/33' }), /PORTICO_TRUSTED_IPS: invalid ip or cidr range: '10.0.0.0\/33'/);
    assert.throws(() => parseEnv({ PORTICO_REAL_IP_HEADER: 'proxy_protocol' }), /PORTICO_REAL_IP_HEADER: 'proxy_protocol' is not supported/);
    assert.throws(() => parseEnv({ PORTICO_REAL_IP_HEADER: 'X Real IP' }), /PORTICO_REAL_IP_HEADER: 'X Real IP' is not a header name/);
    assert.throws(() => parseEnv({ PORTICO_REAL_IP_RECURSIVE: 'yes' }), /PORTICO_REAL_IP_RECURSIVE/);
  });
  it('takes admin GUI origins as exact origins only: no wildcard, path, control character or stray text', () => {
    assert.deepEqual(parseEnv({ PORTICO_ADMIN_GUI_ORIGINS: 'https://gui.example, http://127.0.0.1:8002' }).PORTICO_ADMIN_GUI_ORIGINS, ['https://gui.example', 'http://127.0.0.1:8002']);
    assert.deepEqual(parseEnv({}).PORTICO_ADMIN_GUI_ORIGINS, []);
    for (const bad of ['*', 'https://gui.example/', 'https://gui.example/app', 'gui.example', 'https://gui.example\r\nX-Evil: 1', 'https://gui.example\u0000', 'ftp://gui.example', 'https://ünï.example', 'https://' + 'a'.repeat(10 * 1024 * 1024)]) {
      assert.throws(() => parseEnv({ PORTICO_ADMIN_GUI_ORIGINS: bad }), (e: Error) => e instanceof EnvError && /PORTICO_ADMIN_GUI_ORIGINS/.test(e.message), JSON.stringify(bad.slice(0, 40)));
    }
  });
  it('takes the GUI listener as host:port or off', () => {
    assert.deepEqual(parseEnv({}).PORTICO_GUI_LISTEN, { host: '127.0.0.1', port: 8002 });
    assert.deepEqual(parseEnv({ PORTICO_GUI_LISTEN: '[::1]:9002' }).PORTICO_GUI_LISTEN, { host: '::1', port: 9002 });
    assert.equal(parseEnv({ PORTICO_GUI_LISTEN: 'off' }).PORTICO_GUI_LISTEN, null);
    assert.throws(() => parseEnv({ PORTICO_GUI_LISTEN: 'offf' }), /PORTICO_GUI_LISTEN: expected host:port, got 'offf', or off/);
  });
  it('takes GUI traffic sources as http(s) URLs without credentials', () => {
    assert.deepEqual(parseEnv({}).PORTICO_GUI_TRAFFIC_SOURCES, []);
    assert.deepEqual(parseEnv({ PORTICO_GUI_TRAFFIC_SOURCES: 'http://10.0.0.5:8100/metrics, https://dp2.internal:8100/metrics' }).PORTICO_GUI_TRAFFIC_SOURCES,
      ['http://10.0.0.5:8100/metrics', 'https://dp2.internal:8100/metrics']);
    for (const bad of ['ftp://dp/metrics', 'dp:8100/metrics', 'http://user:pw@dp/metrics', 'http://dp/metrics\r\nX: 1', 'file:///etc/passwd', 'http://' + 'a'.repeat(3000)]) {
      assert.throws(() => parseEnv({ PORTICO_GUI_TRAFFIC_SOURCES: bad }), (e: Error) => e instanceof EnvError && /PORTICO_GUI_TRAFFIC_SOURCES/.test(e.message), JSON.stringify(bad.slice(0, 40)));
    }
  });
});
