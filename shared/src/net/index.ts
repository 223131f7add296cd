// Addresses, CIDR sets and the real client address (Kong's trusted_ips / real_ip_header /
// real_ip_recursive). Pure: no sockets, no configuration reads.
export { canonicalIp, cidrError, formatIp, hostOf, isLoopbackHost, parseCidr, parseIPv4, parseIpInto, type Cidr, type IpVersion } from './ip.ts';
export { IpMatcher } from './matcher.ts';
export { addressFromHeader, peerAddress, realClientIp, type RealIpOptions } from './real-ip.ts';
