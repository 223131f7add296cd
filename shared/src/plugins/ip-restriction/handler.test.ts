// ip-restriction with in-memory ports: allow, deny, both, IPv4 and IPv6, CIDRs, status and message.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ipRestrictionConfig } from './schema.ts';
import { ipRestrictionHandler } from './handler.ts';
import { instantiate, testCtx } from '../test-ports.ts';

const from = (clientIp: string) => testCtx({ clientIp });

describe('ip-restriction handler', () => {
  it('lets through only the allow list (addresses and CIDRs, IPv4 and IPv6)', () => {
    const p = instantiate(ipRestrictionHandler, ipRestrictionConfig, { allow: ['10.0.0.0/8', '192.0.2.7', '2001:db8::/48'] });
    for (const ok of ['10.1.2.3', '192.0.2.7', '2001:db8:0:ffff::1', '2001:DB8::9']) assert.equal(p.access(from(ok)), undefined, ok);
    assert.deepEqual(p.access(from('192.0.2.8')), { status: 403, message: 'IP address not allowed: 192.0.2.8' });
    assert.deepEqual(p.access(from('2001:db8:1::1')), { status: 403, message: 'IP address not allowed: 2001:db8:1::1' });
  });

  it('refuses the deny list and lets the rest through', () => {
    const p = instantiate(ipRestrictionHandler, ipRestrictionConfig, { deny: ['203.0.113.0/24', '::1'] });
    assert.equal(p.access(from('203.0.114.1')), undefined);
    assert.equal(p.access(from('203.0.113.200'))?.status, 403);
    assert.equal(p.access(from('::1'))?.status, 403);
    assert.equal(p.access(from('::2')), undefined);
  });

  it('checks deny before allow', () => {
    const p = instantiate(ipRestrictionHandler, ipRestrictionConfig, { allow: ['10.0.0.0/8'], deny: ['10.6.6.0/24'] });
    assert.equal(p.access(from('10.1.1.1')), undefined);
    assert.equal(p.access(from('10.6.6.6'))?.status, 403);
    assert.equal(p.access(from('11.1.1.1'))?.status, 403);
  });

  it('answers with the configured status and message', () => {
    const p = instantiate(ipRestrictionHandler, ipRestrictionConfig, { deny: ['0.0.0.0/0'], status: 401, message: 'Go away' });
    assert.deepEqual(p.access(from('1.2.3.4')), { status: 401, message: 'Go away' });
  });

  it('refuses a client without an address (unix socket) as Kong does', () => {
    const p = instantiate(ipRestrictionHandler, ipRestrictionConfig, { deny: ['192.0.2.1'] });
    assert.deepEqual(p.access(from('')), { status: 403, message: 'Cannot identify the client IP address, unix domain sockets are not supported.' });
  });

  it('refuses bad addresses, CIDRs, statuses and an empty config at write time', () => {
    const r = ipRestrictionConfig.safeParse({ allow: ['10.0.0.0/8', '10.0.0.0/33', 'fe80::/10%eth0', 'example.com'], status: 1000 });
    assert.equal(r.success, false);
    assert.deepEqual(r.error!.issues.map((i) => `${i.path.join('.')}: ${i.message}`), [
      "allow.1: invalid ip or cidr range: '10.0.0.0/33'",
      "allow.2: invalid ip or cidr range: 'fe80::/10%eth0'",
      "allow.3: invalid ip or cidr range: 'example.com'",
      'status: value should be between 100 and 599',
    ]);
    const empty = ipRestrictionConfig.safeParse({ allow: [], deny: null });
    assert.equal(empty.error!.issues[0].message, "at least one of these fields must be non-empty: 'config.allow', 'config.deny'");
  });
});
