/**
 * Device addresses and Swift's search-value syntax
 * `d<id>r<region>z<zone>-<ip>:<port>R<rip>:<rport>/<device>_<meta>` (every part optional).
 */
import { isIPv4, isIPv6 } from 'node:net';
import { BuilderArgumentError } from './errors.js';

/** Fully expanded lower-case form of an IPv6 address (Swift's `expand_ipv6`). */
function expandIpv6(ip: string): string {
  let head = ip;
  let v4Tail: number[] = [];
  const lastColon = ip.lastIndexOf(':');
  if (ip.includes('.')) {
    v4Tail = ip.slice(lastColon + 1).split('.').map((x) => Number(x));
    head = ip.slice(0, lastColon + 1) + '0:0';
  }
  const [left, right] = head.includes('::') ? head.split('::') : [head, undefined];
  const l = left ? left.split(':') : [];
  const r = right === undefined ? [] : right ? right.split(':') : [];
  const fill = right === undefined ? [] : new Array<string>(8 - l.length - r.length).fill('0');
  const groups = [...l, ...fill, ...r].map((g) => parseInt(g, 16));
  if (v4Tail.length === 4) {
    groups[6] = (v4Tail[0]! << 8) | v4Tail[1]!;
    groups[7] = (v4Tail[2]! << 8) | v4Tail[3]!;
  }
  return groups.map((g) => g.toString(16).padStart(4, '0')).join(':');
}

/** A valid IP (v4 kept, v6 expanded), lower-cased; otherwise a BuilderArgumentError. */
export function normalizeIp(ip: string): string {
  const lower = ip.toLowerCase();
  if (isIPv4(lower)) return lower;
  if (isIPv6(lower)) return expandIpv6(lower);
  throw new BuilderArgumentError(`Invalid ip ${JSON.stringify(ip)}`);
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*\.?$/;

/** An IP (optionally in brackets) or a host name, normalised as Swift does. */
export function normalizeAddress(address: string): string {
  const bare = address.replace(/^\[/, '').replace(/\]$/, '');
  if (address.startsWith('[') && address.endsWith(']')) return normalizeIp(bare);
  const lower = bare.toLowerCase();
  if (isIPv4(lower) || isIPv6(lower)) return normalizeIp(lower);
  // A dotted-decimal look-alike that is not a valid IPv4 is not a host name either.
  if (/^[0-9.]+$/.test(lower) || !HOSTNAME.test(lower)) {
    throw new BuilderArgumentError(`Invalid address ${JSON.stringify(address)}`);
  }
  return lower;
}

export interface SearchValues {
  id?: number;
  region?: number;
  zone?: number;
  ip?: string;
  port?: number;
  replicationIp?: string;
  replicationPort?: number;
  device?: string;
  /** Substring of the device's meta. */
  meta?: string;
  weight?: number;
}

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Parses Swift's `<search-value>`; an unparsable rest -> BuilderArgumentError quoting the value. */
export function parseSearchValue(value: string): SearchValues {
  const match: SearchValues = {};
  let s = value;
  const bad = (): BuilderArgumentError => new BuilderArgumentError(`Invalid <search-value>: ${JSON.stringify(value)}`);
  const takeInt = (prefix: string): number | undefined => {
    if (!s.startsWith(prefix)) return undefined;
    let i = prefix.length;
    while (i < s.length && isDigit(s[i])) i++;
    if (i === prefix.length) throw bad();
    const n = Number(s.slice(prefix.length, i));
    s = s.slice(i);
    return n;
  };
  const takeIp = (): string | undefined => {
    if (isDigit(s[0])) {
      let i = 1;
      while (i < s.length && (isDigit(s[i]) || s[i] === '.')) i++;
      const ip = s.slice(0, i);
      s = s.slice(i);
      return normalizeIp(ip);
    }
    if (s.startsWith('[')) {
      const end = s.indexOf(']');
      if (end < 0) throw bad();
      const ip = s.slice(1, end);
      s = s.slice(end + 1);
      return normalizeIp(ip);
    }
    return undefined;
  };
  const id = takeInt('d');
  if (id !== undefined) match.id = id;
  const region = takeInt('r');
  if (region !== undefined) match.region = region;
  const zone = takeInt('z');
  if (zone !== undefined) match.zone = zone;
  if (s.startsWith('-')) s = s.slice(1);
  const ip = takeIp();
  if (ip !== undefined) match.ip = ip;
  const port = takeInt(':');
  if (port !== undefined) match.port = port;
  if (s.startsWith('R')) {
    s = s.slice(1);
    const rip = takeIp();
    if (rip !== undefined) match.replicationIp = rip;
    const rport = takeInt(':');
    if (rport !== undefined) match.replicationPort = rport;
  }
  if (s.startsWith('/')) {
    let i = 1;
    while (i < s.length && s[i] !== '_') i++;
    match.device = s.slice(1, i);
    s = s.slice(i);
  }
  if (s.startsWith('_')) {
    match.meta = s.slice(1);
    s = '';
  }
  if (s || value === '') throw bad();
  return match;
}
