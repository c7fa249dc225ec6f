/**
 * Command-line parsing with swift-ring-builder's conventions: optparse-style options (`-r 1`,
 * `-r1`, `--region 1`, `--region=1`) mixed with positional arguments, and the device string
 * `[r<R>]z<Z>-<ip>:<port>[R<rip>:<rport>]/<device>[_<meta>]`.
 */
import { normalizeAddress, normalizeIp, type NewDevice } from '@swiftlet/ring';

/** Bad input: the CLI prints the message on one line of stderr and exits 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export type OptType = 'int' | 'float' | 'string' | 'flag';

export interface OptSpec {
  long: string;
  short?: string;
  type: OptType;
}

export interface Parsed {
  opts: Map<string, string | number | boolean>;
  args: string[];
}

/** Swift's device options (utils.parse_args), shared by add/search/set_* /remove/list_parts. */
export const DEVICE_OPTS: OptSpec[] = [
  { long: 'id', short: 'u', type: 'int' },
  { long: 'region', short: 'r', type: 'int' },
  { long: 'zone', short: 'z', type: 'int' },
  { long: 'ip', short: 'i', type: 'string' },
  { long: 'port', short: 'p', type: 'int' },
  { long: 'replication-ip', short: 'j', type: 'string' },
  { long: 'replication-port', short: 'q', type: 'int' },
  { long: 'device', short: 'd', type: 'string' },
  { long: 'weight', short: 'w', type: 'float' },
  { long: 'meta', short: 'm', type: 'string' },
  { long: 'change-ip', short: 'I', type: 'string' },
  { long: 'change-port', short: 'P', type: 'int' },
  { long: 'change-replication-ip', short: 'J', type: 'string' },
  { long: 'change-replication-port', short: 'Q', type: 'int' },
  { long: 'change-device', short: 'D', type: 'string' },
  { long: 'change-meta', short: 'M', type: 'string' },
  { long: 'yes', short: 'y', type: 'flag' },
  { long: 'json', type: 'flag' },
];

export function parseIntArg(value: string, what: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) throw new UsageError(`Invalid ${what} ${JSON.stringify(value)}: not an integer`);
  return Number(value);
}

export function parseFloatArg(value: string, what: string): number {
  const v = value.trim();
  const n = Number(v);
  if (v === '' || !/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(v) || !Number.isFinite(n)) {
    throw new UsageError(`Invalid ${what} ${JSON.stringify(value)}: not a number`);
  }
  return n;
}

export function parseOptions(argv: readonly string[], specs: readonly OptSpec[]): Parsed {
  const opts = new Map<string, string | number | boolean>();
  const args: string[] = [];
  const byLong = new Map(specs.map((s) => [s.long, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const set = (spec: OptSpec, raw: string | undefined, shown: string): void => {
    if (spec.type === 'flag') {
      opts.set(spec.long, true);
      return;
    }
    if (raw === undefined) throw new UsageError(`${shown} option requires an argument`);
    if (spec.type === 'int') opts.set(spec.long, parseIntArg(raw, `value for ${shown}`));
    else if (spec.type === 'float') opts.set(spec.long, parseFloatArg(raw, `value for ${shown}`));
    else opts.set(spec.long, raw);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (a === '--') {
      args.push(...argv.slice(i + 1));
      break;
    }
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const name = a.slice(2, eq < 0 ? undefined : eq);
      const spec = byLong.get(name);
      if (!spec) throw new UsageError(`no such option: --${name}`);
      if (spec.type === 'flag') {
        if (eq >= 0) throw new UsageError(`--${name} option does not take a value`);
        set(spec, undefined, `--${name}`);
      } else {
        set(spec, eq >= 0 ? a.slice(eq + 1) : argv[++i], `--${name}`);
      }
    } else if (a.startsWith('-') && a.length > 1) {
      const spec = byShort.get(a[1] as string);
      if (!spec) throw new UsageError(`no such option: ${a.slice(0, 2)}`);
      if (spec.type === 'flag') {
        if (a.length > 2) throw new UsageError(`no such option: ${a}`);
        set(spec, undefined, a);
      } else {
        set(spec, a.length > 2 ? a.slice(2) : argv[++i], a.slice(0, 2));
      }
    } else {
      args.push(a);
    }
  }
  return { opts, args };
}

/** Swift's validate_args: the option form is in use when any device option is given. */
export function usesOptionForm(p: Parsed): boolean {
  return ['id', 'region', 'zone', 'ip', 'port', 'replication-ip', 'replication-port', 'device', 'weight', 'meta'].some(
    (k) => p.opts.has(k),
  );
}

function takeInt(s: string, what: string, whole: string): [number, string] {
  let i = 0;
  while (i < s.length && s[i] !== undefined && /[0-9]/.test(s[i] as string)) i++;
  if (i === 0) throw new UsageError(`Invalid device string ${JSON.stringify(whole)}: missing ${what} number`);
  return [Number(s.slice(0, i)), s.slice(i)];
}

/** `<ip>:<port>` (IPv6 in brackets) up to the next `R` or `/`. */
function parseAddress(rest: string, whole: string): { ip: string; port: number; rest: string } {
  let s = rest;
  let ipPart: string;
  let after: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0) throw new UsageError(`Invalid device string ${JSON.stringify(whole)}: unclosed [`);
    ipPart = s.slice(1, end);
    s = s.slice(end + 1);
    const m = /^:(\d*)/.exec(s);
    if (!m) throw new UsageError(`Invalid device string ${JSON.stringify(whole)}: missing :port`);
    after = s;
  } else {
    let pos = 0;
    while (pos < s.length && s[pos] !== 'R' && s[pos] !== '/') pos++;
    const address = s.slice(0, pos);
    const colon = address.lastIndexOf(':');
    if (colon < 0) throw new UsageError(`Invalid device string ${JSON.stringify(whole)}: missing :port`);
    ipPart = address.slice(0, colon);
    after = s.slice(colon);
  }
  let pos = 1;
  while (pos < after.length && after[pos] !== 'R' && after[pos] !== '/') pos++;
  const portStr = after.slice(1, pos);
  if (!/^\d+$/.test(portStr) || Number(portStr) > 65535) {
    throw new UsageError(`Invalid device string ${JSON.stringify(whole)}: invalid port ${JSON.stringify(portStr)}`);
  }
  let ip: string;
  try {
    ip = normalizeAddress(ipPart);
  } catch {
    throw new UsageError(`Invalid device string ${JSON.stringify(whole)}: invalid address ${JSON.stringify(ipPart)}`);
  }
  return { ip, port: Number(portStr), rest: after.slice(pos) };
}

export interface ParsedDevice {
  region: number | undefined;
  zone: number;
  ip: string;
  port: number;
  replicationIp: string | undefined;
  replicationPort: number | undefined;
  device: string;
  meta: string;
}

/** Swift's parse_add_value: `[r<R>]z<Z>-<ip>:<port>[R<rip>:<rport>]/<device>[_<meta>]`. */
export function parseDeviceString(value: string): ParsedDevice {
  let s = value;
  let region: number | undefined;
  if (s.startsWith('r')) [region, s] = takeInt(s.slice(1), 'region', value);
  if (!s.startsWith('z')) throw new UsageError(`Invalid device string ${JSON.stringify(value)}: expected z<zone>`);
  let zone: number;
  [zone, s] = takeInt(s.slice(1), 'zone', value);
  if (!s.startsWith('-')) throw new UsageError(`Invalid device string ${JSON.stringify(value)}: expected - after the zone`);
  const main = parseAddress(s.slice(1), value);
  s = main.rest;
  let replicationIp: string | undefined;
  let replicationPort: number | undefined;
  if (s.startsWith('R')) {
    const r = parseAddress(s.slice(1), value);
    replicationIp = r.ip;
    replicationPort = r.port;
    s = r.rest;
  }
  if (!s.startsWith('/')) throw new UsageError(`Invalid device string ${JSON.stringify(value)}: expected /<device>`);
  let i = 1;
  while (i < s.length && s[i] !== '_') i++;
  const device = s.slice(1, i);
  if (device === '' || device.startsWith(' ') || device.endsWith(' ')) {
    throw new UsageError(`Invalid device string ${JSON.stringify(value)}: invalid device name ${JSON.stringify(device)}`);
  }
  s = s.slice(i);
  const meta = s.startsWith('_') ? s.slice(1) : '';
  return { region, zone, ip: main.ip, port: main.port, replicationIp, replicationPort, device, meta };
}

/** The option form of add (Swift's build_dev_from_opts). */
export function deviceFromOptions(p: Parsed): NewDevice {
  for (const [k, short] of [
    ['region', 'r'],
    ['zone', 'z'],
    ['ip', 'i'],
    ['port', 'p'],
    ['device', 'd'],
    ['weight', 'w'],
  ] as const) {
    if (!p.opts.has(k)) throw new UsageError(`Required argument -${short}/--${k} not specified.`);
  }
  const ipRaw = p.opts.get('ip') as string;
  const ip = normalizeAddress(ipRaw);
  const port = p.opts.get('port') as number;
  const device = p.opts.get('device') as string;
  if (device === '' || device.startsWith(' ') || device.endsWith(' ')) {
    throw new UsageError(`Invalid device name ${JSON.stringify(device)}`);
  }
  const weight = p.opts.get('weight') as number;
  if (weight < 0) throw new UsageError(`Invalid weight ${weight}: must not be negative`);
  return {
    region: p.opts.get('region') as number,
    zone: p.opts.get('zone') as number,
    ip,
    port,
    replicationIp: p.opts.has('replication-ip') ? normalizeAddress(p.opts.get('replication-ip') as string) : ip,
    replicationPort: (p.opts.get('replication-port') as number | undefined) ?? port,
    device,
    weight,
    meta: (p.opts.get('meta') as string | undefined) ?? '',
  };
}

/** Search values from options (Swift's parse_search_values_from_opts). */
export function searchFromOptions(p: Parsed): Record<string, string | number> {
  const out: Record<string, string | number> = {};
  const map: [string, string][] = [
    ['id', 'id'],
    ['region', 'region'],
    ['zone', 'zone'],
    ['ip', 'ip'],
    ['port', 'port'],
    ['replication-ip', 'replicationIp'],
    ['replication-port', 'replicationPort'],
    ['device', 'device'],
    ['weight', 'weight'],
    ['meta', 'meta'],
  ];
  for (const [opt, key] of map) {
    const v = p.opts.get(opt);
    if (v === undefined || v === '') continue;
    out[key] = opt === 'ip' || opt === 'replication-ip' ? normalizeAddress(v as string) : (v as string | number);
  }
  return out;
}

/** set_info's change string `<ip>:<port>R<rip>:<rport>/<device>_<meta>`, every part optional. */
export function parseChangeValue(value: string): Record<string, string | number> {
  const change: Record<string, string | number> = {};
  let s = value;
  const bad = (): UsageError => new UsageError(`Invalid set info change value: ${JSON.stringify(value)}`);
  const addr = (ipKey: string, portKey: string): void => {
    let ip = '';
    if (s && /[0-9]/.test(s[0] as string)) {
      let i = 1;
      while (i < s.length && /[0-9.]/.test(s[i] as string)) i++;
      ip = s.slice(0, i);
      s = s.slice(i);
    } else if (s.startsWith('[')) {
      const end = s.indexOf(']');
      if (end < 0) throw bad();
      ip = s.slice(1, end);
      s = s.slice(end + 1);
    }
    if (ip) {
      try {
        change[ipKey] = normalizeIp(ip);
      } catch {
        throw new UsageError(`Invalid set info change value: ${JSON.stringify(value)} (invalid ip ${JSON.stringify(ip)})`);
      }
    }
    if (s.startsWith(':')) {
      let i = 1;
      while (i < s.length && /[0-9]/.test(s[i] as string)) i++;
      if (i === 1) throw bad();
      change[portKey] = Number(s.slice(1, i));
      s = s.slice(i);
    }
  };
  addr('ip', 'port');
  if (s.startsWith('R')) {
    s = s.slice(1);
    addr('replicationIp', 'replicationPort');
  }
  if (s.startsWith('/')) {
    let i = 1;
    while (i < s.length && s[i] !== '_') i++;
    change['device'] = s.slice(1, i);
    s = s.slice(i);
  }
  if (s.startsWith('_')) {
    change['meta'] = s.slice(1);
    s = '';
  }
  if (s || Object.keys(change).length === 0) throw bad();
  return change;
}
