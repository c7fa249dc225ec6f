/** Output formatting that reproduces swift-ring-builder's text byte for byte where it can. */
import { pyFloat, type RingDevice } from '@swiftlet/ring';

export { pyFloat };

export const padL = (v: string | number, w: number): string => String(v).padStart(w);
export const padR = (v: string | number, w: number): string => String(v).padEnd(w);
export const fixed = (n: number, d: number): string => n.toFixed(d);

/** Python's str(timedelta(seconds=n)) for whole seconds: `H:MM:SS`, `1 day, H:MM:SS`. */
export function timedelta(seconds: number): string {
  const s = Math.max(0, Math.trunc(seconds));
  const days = Math.floor(s / 86400);
  const rem = s % 86400;
  const hms = `${Math.floor(rem / 3600)}:${String(Math.floor((rem % 3600) / 60)).padStart(2, '0')}:${String(rem % 60).padStart(2, '0')}`;
  return days ? `${days} day${days === 1 ? '' : 's'}, ${hms}` : hms;
}

const bracket = (ip: string): string => (ip.includes(':') ? `[${ip}]` : ip);

/** Swift's format_device: `d<id>r<r>z<z>-<ip>:<port>R<rip>:<rport>/<device>_"<meta>"`. */
export function formatDevice(d: Omit<RingDevice, 'id' | 'weight'> & { id?: number | string }): string {
  return (
    `d${d.id ?? 'None'}r${d.region}z${d.zone}-${bracket(d.ip)}:${d.port}R${bracket(d.replicationIp)}:` +
    `${d.replicationPort}/${d.device}_"${d.meta}"`
  );
}

export interface TableDevice extends RingDevice {
  parts: number;
}

/** Swift's _make_display_device_table: header line and one line per device. */
export function deviceTable(devs: readonly TableDevice[], balance: (id: number) => number, flags: (id: number) => string): string[] {
  let ipW = 10;
  let portW = 4;
  let ripW = 14;
  let rportW = 4;
  let weightW = 6;
  let ip6 = false;
  let rip6 = false;
  for (const d of devs) {
    if (d.ip.includes(':')) ip6 = true;
    if (d.replicationIp.includes(':')) rip6 = true;
    ipW = Math.max(ipW, d.ip.length);
    ripW = Math.max(ripW, d.replicationIp.length);
    portW = Math.max(portW, String(d.port).length);
    rportW = Math.max(rportW, String(d.replicationPort).length);
    weightW = Math.max(weightW, padL(fixed(d.weight, 2), 6).length);
  }
  if (ip6) ipW += 2;
  if (rip6) ripW += 2;
  const lines = [
    `Devices:${padL('id', 5)} ${padL('region', 6)} ${padL('zone', 4)} ${padL('ip address', ipW)}:${padR('port', portW)} ` +
      `${padL('replication ip', ripW)}:${padR('port', rportW)} ${padL('name', 5)} ${padL('weight', weightW)} ` +
      `${padL('partitions', 10)} ${padL('balance', 7)} ${padL('flags', 5)} meta`,
  ];
  for (const d of devs) {
    lines.push(
      `${padL(d.id, 13)} ${padL(d.region, 6)} ${padL(d.zone, 4)} ${padL(bracket(d.ip), ipW)}:${padR(d.port, portW)} ` +
        `${padL(bracket(d.replicationIp), ripW)}:${padR(d.replicationPort, rportW)} ${padL(d.device, 5)} ` +
        `${padL(fixed(d.weight, 2), weightW)} ${padL(d.parts, 10)} ${padL(fixed(balance(d.id), 2), 7)} ` +
        `${padL(flags(d.id), 5)} ${d.meta}`,
    );
  }
  return lines;
}

/** Python's urllib.parse.quote (safe='/'). */
export function pyQuote(s: string): string {
  return encodeURIComponent(s)
    .replace(/%2F/g, '/')
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}
