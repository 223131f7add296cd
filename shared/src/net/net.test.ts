// Addresses, CIDR sets and the realip walk, with fast-check models: IPv4 and IPv6 ranges are checked
// against BigInt arithmetic, and the header walk against a plain list model of nginx's algorithm.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalIp, cidrError, IpMatcher, isLoopbackHost, parseCidr, realClientIp, type RealIpOptions } from './index.ts';

const RUNS = Number(process.env.PORTICO_FUZZ_RUNS ?? 300);

describe('addresses', () => {
  it('parses and canonicalizes IPv4 and IPv6 (RFC 5952)', () => {
    assert.equal(canonicalIp('10.0.0.1'), '10.0.0.1');
    assert.equal(canonicalIp('2001:DB8:0:0:0:0:0:1'), '2001:db8::1');
    assert.equal(canonicalIp('2001:db8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
    assert.equal(canonicalIp('::'), '::');
    assert.equal(canonicalIp('::1'), '::1');
    assert.equal(canonicalIp('1::'), '1::');
    assert.equal(canonicalIp('fe80::1%eth0'), 'fe80::1');
    assert.equal(canonicalIp('::ffff:192.0.2.7'), '192.0.2.7');
    assert.equal(canonicalIp('64:ff9b::192.0.2.33'), '64:ff9b::c000:221');
  });

  it('refuses what is not an address', () => {
    for (const bad of ['', '1.2.3', '1.2.3.4.5', '256.1.1.1', '01.2.3.4', '1.2.3.4 ', ' 1.2.3.4', '1..2.3', 'a.b.c.d',
      ':', ':::', '1:2:3:4:5:6:7:8:9', '1::2::3', '12345::', '1:2:3:4:5:6:7::8:9', ':1::', '1::2:', 'g::', '::1.2.3', '::1.2.3.4.5',
      '1:2:3:4:5:6:7:1.2.3.4', 'fe80::1%', 'unknown', '[::1]']) {
      assert.equal(canonicalIp(bad), null, bad);
    }
  });

  it('parses CIDRs, clearing host bits, and names a bad one as Kong does', () => {
    assert.deepEqual(parseCidr('10.1.2.3/8') && [...parseCidr('10.1.2.3/8')!.words].slice(0, 1), [0x0a000000]);
    assert.equal(parseCidr('::ffff:10.0.0.0/104')!.version, 4);
    assert.equal(parseCidr('::ffff:10.0.0.0/104')!.prefix, 8);
    for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/08', '10.0.0.0/-1', 'fe80::/10%eth0', 'example.com', '10.0.0.0/8/8']) {
      assert.equal(cidrError(bad), `invalid ip or cidr range: '${bad}'`);
    }
  });
});

describe('IpMatcher', () => {
  it('matches addresses and ranges of both families', () => {
    const m = new IpMatcher(['10.0.0.0/8', '192.168.1.7', '2001:db8::/32', '::1']);
    assert.deepEqual(m.entries, ['10.0.0.0/8', '192.168.1.7/32', '2001:db8::/32', '::1/128']);
    for (const yes of ['10.255.0.1', '192.168.1.7', '2001:db8:ffff::1', '::1', '::ffff:10.9.9.9']) assert.equal(m.contains(yes), true, yes);
    for (const no of ['11.0.0.1', '192.168.1.8', '2001:db9::1', '::2', '', 'nonsense', '::ffff:11.0.0.1']) assert.equal(m.contains(no), false, no);
  });

  it('matches everything with 0.0.0.0/0 and ::/0, and nothing when empty', () => {
    const all = new IpMatcher(['0.0.0.0/0', '::/0']);
    assert.equal(all.contains('203.0.113.9'), true);
    assert.equal(all.contains('2001:db8::9'), true);
    const none = new IpMatcher([]);
    assert.equal(none.isEmpty, true);
    assert.equal(none.contains('127.0.0.1'), false);
  });

  it('throws naming the bad entry', () => {
    assert.throws(() => new IpMatcher(['10.0.0.0/8', '10.0.0.300']), /invalid ip or cidr range: '10.0.0.300'/);
  });

  const v4 = fc.integer({ min: 0, max: 0xffffffff });
  const v6 = fc.bigInt({ min: 0n, max: (1n << 128n) - 1n });
  const fmt4 = (n: number) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
  const fmt6Full = (b: bigint) => Array.from({ length: 8 }, (_, i) => ((b >> BigInt(112 - 16 * i)) & 0xffffn).toString(16)).join(':');
  const isMapped = (b: bigint) => b >> 32n === 0xffffn;

  it('agrees with BigInt arithmetic on random IPv4 ranges', () => {
    fc.assert(fc.property(fc.array(fc.tuple(v4, fc.integer({ min: 0, max: 32 })), { maxLength: 8 }), v4, (ranges, addr) => {
      const m = new IpMatcher(ranges.map(([n, p]) => `${fmt4(n)}/${p}`));
      const expected = ranges.some(([n, p]) => p === 0 || (n >>> (32 - p)) === (addr >>> (32 - p)));
      return m.contains(fmt4(addr)) === expected;
    }), { numRuns: RUNS });
  });

  it('agrees with BigInt arithmetic on random IPv6 ranges, and canonical text round-trips', () => {
    fc.assert(fc.property(fc.array(fc.tuple(v6, fc.integer({ min: 0, max: 128 })), { maxLength: 6 }), v6, (ranges, addr) => {
      fc.pre(!isMapped(addr) && ranges.every(([n]) => !isMapped(n)));
      const m = new IpMatcher(ranges.map(([n, p]) => `${fmt6Full(n)}/${p}`));
      const expected = ranges.some(([n, p]) => (n >> BigInt(128 - p)) === (addr >> BigInt(128 - p)));
      const text = canonicalIp(fmt6Full(addr))!;
      return m.contains(fmt6Full(addr)) === expected && m.contains(text) === expected && canonicalIp(text) === text;
    }), { numRuns: RUNS });
  });

  it('never throws on arbitrary text', () => {
    const m = new IpMatcher(['0.0.0.0/0', '::/0']);
    fc.assert(fc.property(fc.string({ unit: fc.constantFrom(...'0123456789abcdefABCDEF:.%[]/ ,x'), maxLength: 48 }), (s) => {
      const c = canonicalIp(s);
      // Whatever parses is an address of some family, and its canonical form parses to itself.
      return (c === null) === !m.contains(s) && (c === null || canonicalIp(c) === c);
    }), { numRuns: RUNS });
  });
});

describe('realClientIp', () => {
  const opts = (trusted: string[], header = 'x-real-ip', recursive = false): RealIpOptions => ({ trustedIps: new IpMatcher(trusted), realIpHeader: header, recursive });

  it('ignores the header when no proxy is trusted, or the peer is not one (no spoofing)', () => {
    assert.equal(realClientIp('203.0.113.5', { 'x-real-ip': '1.1.1.1' }, opts([])), '203.0.113.5');
    assert.equal(realClientIp('203.0.113.5', { 'x-forwarded-for': '1.1.1.1' }, opts(['10.0.0.0/8'], 'x-forwarded-for', true)), '203.0.113.5');
    assert.equal(realClientIp('::ffff:203.0.113.5', {}, opts([])), '203.0.113.5');
  });

  it('uses the header of a trusted peer (X-Real-IP, with a port, IPv6 in brackets)', () => {
    const o = opts(['10.0.0.0/8', 'fd00::/8']);
    assert.equal(realClientIp('10.0.0.2', { 'x-real-ip': '198.51.100.7' }, o), '198.51.100.7');
    assert.equal(realClientIp('::ffff:10.0.0.2', { 'x-real-ip': '198.51.100.7:4711' }, o), '198.51.100.7');
    assert.equal(realClientIp('fd00::1', { 'x-real-ip': '[2001:DB8::7]:443' }, o), '2001:db8::7');
    assert.equal(realClientIp('fd00::1', { 'x-real-ip': '2001:db8::7' }, o), '2001:db8::7');
    assert.equal(realClientIp('10.0.0.2', {}, o), '10.0.0.2');
    assert.equal(realClientIp('10.0.0.2', { 'x-real-ip': 'unknown' }, o), '10.0.0.2');
  });

  it('takes the rightmost X-Forwarded-For address without recursion, the first untrusted from the right with it', () => {
    const xff = { 'x-forwarded-for': '6.6.6.6, 198.51.100.7, 10.0.0.9' };
    assert.equal(realClientIp('10.0.0.2', xff, opts(['10.0.0.0/8'], 'x-forwarded-for')), '10.0.0.9');
    assert.equal(realClientIp('10.0.0.2', xff, opts(['10.0.0.0/8'], 'x-forwarded-for', true)), '198.51.100.7');
    // Everything trusted: the leftmost address (nginx).
    assert.equal(realClientIp('10.0.0.2', { 'x-forwarded-for': '10.1.1.1,10.2.2.2' }, opts(['10.0.0.0/8'], 'x-forwarded-for', true)), '10.1.1.1');
    // A bad token stops the walk at the last good address.
    assert.equal(realClientIp('10.0.0.2', { 'x-forwarded-for': '198.51.100.7, garbage, 10.0.0.9' }, opts(['10.0.0.0/8'], 'x-forwarded-for', true)), '10.0.0.9');
  });

  const addr = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }).map((n) => `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`),
    fc.constantFrom('10.0.0.1', '10.9.8.7', '2001:db8::1', 'fd00::5', '192.0.2.1'),
  );
  it('follows the nginx walk on random chains (model check)', () => {
    const trusted = ['10.0.0.0/8', 'fd00::/8'];
    const isTrusted = (a: string) => /^10\./.test(a) || /^fd/.test(a);
    fc.assert(fc.property(addr, fc.array(addr, { maxLength: 6 }), fc.boolean(), fc.constantFrom(',', ', ', ' ,  '), (peer, chain, recursive, sep) => {
      const got = realClientIp(peer, { 'x-forwarded-for': chain.join(sep) }, opts(trusted, 'x-forwarded-for', recursive));
      let want = peer;
      if (isTrusted(peer) && chain.length > 0) {
        if (!recursive) want = chain[chain.length - 1];
        else for (let i = chain.length - 1; i >= 0; i--) { want = chain[i]; if (!isTrusted(want)) break; }
      }
      return got === canonicalIp(want);
    }), { numRuns: RUNS });
  });
});

describe('isLoopbackHost', () => {
  it('knows loopback names and addresses, bracketed or not, and nothing else', () => {
    for (const h of ['localhost', 'LOCALHOST', '127.0.0.1', '127.9.8.7', '::1', '[::1]', '0:0:0:0:0:0:0:1']) assert.equal(isLoopbackHost(h), true, h);
    for (const h of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'evil.example', '127.0.0.1.nip.io', '', '[::1', '::ffff:8.8.8.8']) assert.equal(isLoopbackHost(h), false, h);
  });
});
