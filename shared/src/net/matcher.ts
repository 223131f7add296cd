// A set of addresses and CIDR ranges, compiled once (per snapshot or at start) and asked per request.
// IPv4: one Set of networks per distinct prefix length, so a lookup costs one mask and one hash
// probe per length present (at most 33), whatever the list's size. IPv6 lists are short in
// practice (a few provider ranges), so they are scanned: four masked word compares per entry.
import { cidrError, formatCidr, parseCidr, parseIpInto, wordMask, type Cidr } from './ip.ts';

export class IpMatcher {
  /** The entries, canonical (`10.0.0.0/8`), in the order given. */
  readonly entries: readonly string[];
  private readonly v4Masks: number[] = [];
  private readonly v4Networks: Set<number>[] = [];
  private readonly v6Networks: Uint32Array;
  private readonly v6Masks: Uint32Array;
  private readonly v6Count: number;
  // Scratch for one lookup (synchronous, so shared by every call).
  private static readonly scratch = new Uint32Array(4);

  /** Throws an Error naming the first bad entry (Kong's wording) when an entry is not an address or CIDR. */
  constructor(list: readonly string[]) {
    const cidrs: Cidr[] = [];
    for (const raw of list) {
      const c = parseCidr(raw.trim());
      if (!c) throw new Error(cidrError(raw.trim())!);
      cidrs.push(c);
    }
    this.entries = cidrs.map(formatCidr);
    const byPrefix = new Map<number, Set<number>>();
    const v6 = cidrs.filter((c) => c.version === 6);
    for (const c of cidrs) {
      if (c.version !== 4) continue;
      let set = byPrefix.get(c.prefix);
      if (!set) byPrefix.set(c.prefix, (set = new Set()));
      set.add(c.words[0]);
    }
    // Longest prefixes first: the specific entries of a list are the ones most often hit.
    for (const prefix of [...byPrefix.keys()].sort((a, b) => b - a)) {
      this.v4Masks.push(wordMask(prefix));
      this.v4Networks.push(byPrefix.get(prefix)!);
    }
    this.v6Count = v6.length;
    this.v6Networks = new Uint32Array(v6.length * 4);
    this.v6Masks = new Uint32Array(v6.length * 4);
    v6.forEach((c, k) => {
      for (let w = 0; w < 4; w++) {
        this.v6Networks[k * 4 + w] = c.words[w];
        this.v6Masks[k * 4 + w] = wordMask(c.prefix - 32 * w);
      }
    });
  }

  get isEmpty(): boolean {
    return this.entries.length === 0;
  }

  /** Whether the address `ip` (no port) is in the set; anything that is not an address is not. */
  contains(ip: string): boolean {
    return this.containsRange(ip, 0, ip.length);
  }

  /** `contains` for the address in s[start, end), without slicing it out. */
  containsRange(s: string, start: number, end: number): boolean {
    const w = IpMatcher.scratch;
    const v = parseIpInto(s, start, end, w);
    return v === 0 ? false : this.containsParsed(v, w);
  }

  /** For an address already parsed by parseIpInto / parseAddrPortInto. */
  containsParsed(version: 4 | 6, words: ArrayLike<number>): boolean {
    if (version === 4) {
      const a = words[0];
      for (let i = 0; i < this.v4Masks.length; i++) if (this.v4Networks[i].has((a & this.v4Masks[i]) >>> 0)) return true;
      return false;
    }
    const n = this.v6Networks, m = this.v6Masks;
    const a0 = words[0], a1 = words[1], a2 = words[2], a3 = words[3];
    for (let k = 0; k < this.v6Count * 4; k += 4) {
      if (((a0 & m[k]) >>> 0) === n[k] && ((a1 & m[k + 1]) >>> 0) === n[k + 1]
        && ((a2 & m[k + 2]) >>> 0) === n[k + 2] && ((a3 & m[k + 3]) >>> 0) === n[k + 3]) return true;
    }
    return false;
  }
}
