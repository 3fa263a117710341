/**
 * Endpoint safety for outbound notifications (server-side request forgery). By default Clarion refuses
 * to connect to loopback, private, link-local, cloud metadata and other special-purpose addresses, for
 * IPv4, IPv6 and IPv4-mapped IPv6. The check runs inside the connection's DNS lookup, so the address
 * that was checked is the address connected to (no time-of-check/time-of-use gap, no DNS rebinding).
 * An explicit allow-list (hosts and CIDR ranges) opens local endpoints for development and tests.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP, type LookupFunction } from 'node:net';

export interface EndpointPolicy {
  /** Host names (exact, case-insensitive) or CIDR ranges (`127.0.0.0/8`, `::1/128`) that are allowed even if special. */
  allow: string[];
  /** Allow plain `http:` endpoints (default false: https only). */
  allowHttp: boolean;
}

export class EndpointRefusedError extends Error {
  readonly code = 'ENDPOINT_REFUSED';
  constructor(message: string) {
    super(message);
    this.name = 'EndpointRefusedError';
  }
}

/** Special-purpose ranges (IANA IPv4/IPv6 special-purpose registries) that a webhook must not reach. */
const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local, incl. cloud metadata 169.254.169.254
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // documentation
  ['192.88.99.0', 24], // 6to4 relay
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // documentation
  ['203.0.113.0', 24], // documentation
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
];
const BLOCKED_V6: [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b::', 96], // NAT64 (embeds IPv4)
  ['100::', 64], // discard
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4 (embeds IPv4)
  ['fc00::', 7], // unique local (incl. fd00:ec2::254 metadata)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
];

const blocked = new BlockList();
for (const [a, p] of BLOCKED_V4) blocked.addSubnet(a, p, 'ipv4');
for (const [a, p] of BLOCKED_V6) blocked.addSubnet(a, p, 'ipv6');

/** `::ffff:1.2.3.4` / `::ffff:102:304` → `1.2.3.4`, so mapped addresses get the IPv4 rules. */
export function unmapIPv4(address: string): string {
  const m = /^::ffff:(?:0:)?(.+)$/i.exec(address);
  if (!m) return address;
  if (isIP(m[1]) === 4) return m[1];
  const hex = /^([0-9a-f]{1,4}):([0-9a-f]{1,4})$/i.exec(m[1]);
  if (!hex) return address;
  const hi = parseInt(hex[1], 16);
  const lo = parseInt(hex[2], 16);
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}

const MAX_REMEMBERED_URLS = 10_000;

export class EndpointGuard {
  private readonly allowHosts = new Set<string>();
  private readonly allowNets = new BlockList();
  /** refuseUrl per URL: the policy never changes, and every delivery asks again (1.4% of busy time). */
  private readonly urlVerdicts = new Map<string, string | undefined>();

  constructor(private readonly policy: EndpointPolicy) {
    for (const entry of policy.allow) {
      const [addr, bits] = entry.split('/');
      const family = isIP(addr);
      if (family && bits !== undefined) this.allowNets.addSubnet(addr, Number(bits), family === 4 ? 'ipv4' : 'ipv6');
      else if (family) this.allowNets.addAddress(addr, family === 4 ? 'ipv4' : 'ipv6');
      else this.allowHosts.add(entry.toLowerCase());
    }
  }

  /** Why an address may not be connected to, or undefined if it may. */
  refuseAddress(address: string, host?: string): string | undefined {
    if (host && this.allowHosts.has(host.toLowerCase())) return undefined;
    const plain = unmapIPv4(address);
    const family = isIP(plain);
    if (!family) return `'${address}' is not an IP address`;
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (this.allowNets.check(plain, type)) return undefined;
    if (blocked.check(plain, type)) {
      return `address ${address}${host && host !== address ? ` (of ${host})` : ''} is loopback, private, link-local or otherwise special-purpose; add it to the endpoint allow-list to permit it`;
    }
    return undefined;
  }

  /**
   * Checks an endpoint URL before any connection: scheme, and IP literals (which skip DNS lookup).
   * Returns a reason to refuse, or undefined.
   */
  refuseUrl(url: string): string | undefined {
    if (this.urlVerdicts.has(url)) return this.urlVerdicts.get(url);
    const verdict = this.checkUrl(url);
    // Bounded: a flood of distinct endpoints only costs a re-parse, never unbounded memory.
    if (this.urlVerdicts.size >= MAX_REMEMBERED_URLS) this.urlVerdicts.clear();
    this.urlVerdicts.set(url, verdict);
    return verdict;
  }

  private checkUrl(url: string): string | undefined {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return `'${url}' is not an absolute URL`;
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') return `scheme '${u.protocol}' is not allowed; use https`;
    if (u.protocol === 'http:' && !this.policy.allowHttp) return 'plain http is refused (notifications may carry PHI); use https, or enable allowHttp';
    if (u.username || u.password) return 'credentials in the URL are not allowed; use channel.header';
    const host = u.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host)) return this.refuseAddress(host, host);
    return undefined;
  }

  /** A DNS lookup for sockets that refuses special-purpose addresses unless allow-listed. */
  readonly lookup: LookupFunction = (hostname, options, callback) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses: LookupAddress[]) => {
      if (err) return callback(err, '', 4);
      const list = addresses;
      const okList = list.filter((a) => this.refuseAddress(a.address, hostname) === undefined);
      if (okList.length === 0) {
        const reason = list.length ? this.refuseAddress(list[0].address, hostname) : `no address for ${hostname}`;
        return callback(new EndpointRefusedError(reason ?? 'refused'), '', 4);
      }
      if (options.all) return (callback as unknown as (e: null, a: LookupAddress[]) => void)(null, okList);
      return callback(null, okList[0].address, okList[0].family);
    });
  };
}
