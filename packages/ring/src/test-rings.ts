/** Small rings for unit tests (not exported from the package index). */
import { RingData, type RingDevice } from './ring-data.js';

export function device(id: number, region: number, zone: number, ip: string, extra: Partial<RingDevice> = {}): RingDevice {
  return {
    id, region, zone, ip, port: 6200, replicationIp: ip, replicationPort: 6200,
    device: `sd${String.fromCharCode(97 + (id % 26))}${id}`, weight: 100, meta: '', ...extra,
  };
}

/**
 * 2 regions x 3 zones x 2 servers x 2 disks (24 devices), table filled so that each partition's
 * replicas sit in distinct zones, deterministic from `seed`.
 */
export function sampleRing(partPower = 8, replicas = 3, seed = 1): RingData {
  const devs: RingDevice[] = [];
  let id = 0;
  for (let r = 1; r <= 2; r++)
    for (let z = 1; z <= 3; z++)
      for (let s = 1; s <= 2; s++) for (let d = 0; d < 2; d++) devs.push(device(id++, r, z, `10.${r}.${z}.${s}`));
  let x = seed;
  const rnd = (n: number): number => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return (x >>> 8) % n;
  };
  const parts = 2 ** partPower;
  const rows: Uint16Array[] = [];
  for (let r = 0; r < Math.ceil(replicas); r++) {
    rows.push(new Uint16Array(r < Math.floor(replicas) ? parts : Math.floor(parts * (replicas % 1))));
  }
  for (let p = 0; p < parts; p++) {
    const zones = new Set<number>();
    for (const row of rows) {
      if (p >= row.length) continue;
      let dev: RingDevice;
      do dev = devs[rnd(devs.length)] as RingDevice;
      while (zones.has(dev.region * 10 + dev.zone));
      zones.add(dev.region * 10 + dev.zone);
      row[p] = dev.id;
    }
  }
  return new RingData({ devs, replica2part2devId: rows, partShift: 32 - partPower, version: 3 });
}
