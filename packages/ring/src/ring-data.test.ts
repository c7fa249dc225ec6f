import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RingData, RingFileError, RING_GZIP_MTIME } from './ring-data.js';
import { device, sampleRing } from './test-rings.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swiftlet-ringdata-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const rowsOf = (rd: RingData): number[][] => rd.replica2part2devId.map((r) => [...r]);

describe('RingData v1 writing', () => {
  it('round-trips devices, table, version and a short last row', () => {
    const rd = sampleRing(6, 3.25);
    rd.nextPartPower = 7;
    (rd.devs[2] as { meta: string }).meta = 'ünï "quoted"';
    const back = RingData.fromBuffer(rd.toBuffer('object.ring.gz'));
    expect(back.formatVersion).toBe(1);
    expect(back.devs).toEqual(rd.devs);
    expect(rowsOf(back)).toEqual(rowsOf(rd));
    expect(back.replica2part2devId.at(-1)?.length).toBe(16);
    expect(back.replicaCount).toBe(3.25);
    expect(back.version).toBe(3);
    expect(back.nextPartPower).toBe(7);
    expect(back.partPower).toBe(6);
  });

  it("writes Swift's layout: magic, sorted-key JSON with float weights, little-endian rows", () => {
    const rd = new RingData({
      devs: [device(0, 1, 1, '127.0.0.1', { weight: 100, device: 'sdb1' }), null],
      replica2part2devId: [Uint16Array.from([0, 0])],
      partShift: 31,
    });
    const gz = rd.toBuffer('/some/where/account.ring.gz');
    // gzip header: FNAME flag, fixed mtime, best-compression flag, OS 255, name without .gz
    expect(gz.readUInt32LE(4)).toBe(RING_GZIP_MTIME);
    expect(gz[3]).toBe(0x08);
    expect(gz.subarray(10, 23).toString('latin1')).toBe('account.ring\0');
    const raw = gunzipSync(gz);
    expect(raw.subarray(0, 6)).toEqual(Buffer.from('R1NG\x00\x01', 'latin1'));
    const len = raw.readUInt32BE(6);
    expect(raw.subarray(10, 10 + len).toString()).toBe(
      '{"byteorder": "little", "devs": [{"device": "sdb1", "id": 0, "ip": "127.0.0.1", "meta": "", "port": 6200, ' +
        '"region": 1, "replication_ip": "127.0.0.1", "replication_port": 6200, "weight": 100.0, "zone": 1}, null], ' +
        '"part_shift": 31, "replica_count": 1}',
    );
    expect(raw.length).toBe(10 + len + 4);
    // The magic sits in a stored (uncompressed) deflate block, so file(1) can see it.
    expect(gz.indexOf(Buffer.from('R1NG', 'latin1'))).toBeGreaterThan(0);
  });

  it('gives byte-identical files for identical data under the same name', async () => {
    const a = join(dir, 'object.ring.gz');
    await sampleRing(8, 3, 5).save(a);
    const first = await readFile(a);
    await RingData.fromFile(a).save(a);
    expect((await readFile(a)).equals(first)).toBe(true);
    expect(sampleRing(8, 3, 5).toBuffer('object.ring.gz').equals(first)).toBe(true);
    expect(sampleRing(8, 3, 6).toBuffer('object.ring.gz').equals(first)).toBe(false);
    // save leaves no temporary files behind
    expect(await readdir(dir)).toEqual(['object.ring.gz']);
  });

  it('refuses device ids above 65535 in v1 but writes them in v2', () => {
    const devs = Array.from({ length: 70000 }, (_, i) => (i === 0 || i === 69999 ? device(i, 1, 1, '10.0.0.1') : null));
    const rd = new RingData({ devs, replica2part2devId: [Uint32Array.from([0, 69999])], partShift: 31 });
    expect(() => rd.toBuffer('x.ring.gz')).toThrow(/2-byte ids/);
    const back = RingData.fromBuffer(rd.toBuffer('x.ring.gz', { formatVersion: 2 }));
    expect(back.replica2part2devId[0]).toBeInstanceOf(Uint32Array);
    expect(rowsOf(back)).toEqual([[0, 69999]]);
  });
});

function v1File(header: object, rows: Buffer): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(4);
  len.writeUInt32BE(json.length);
  return gzipSync(Buffer.concat([Buffer.from('R1NG\x00\x01', 'latin1'), len, json, rows]));
}

const swiftDev = { id: 0, zone: 1, ip: '10.0.0.1', port: 6200, device: 'sdb', weight: 1.0 };

describe('RingData v1 reading', () => {
  it('reads big-endian rows, old devices without region/replication keys, and a short last row', () => {
    const rows = Buffer.alloc(2 * 4 + 2 * 2);
    [0, 1, 1, 0, 1, 0].forEach((v, i) => rows.writeUInt16BE(v, 2 * i));
    const gz = v1File(
      { byteorder: 'big', devs: [swiftDev, { ...swiftDev, id: 1, ip: '10.0.0.2' }], part_shift: 30, replica_count: 2 },
      rows,
    );
    const rd = RingData.fromBuffer(gz);
    expect(rowsOf(rd)).toEqual([[0, 1, 1, 0], [1, 0]]);
    expect(rd.replicaCount).toBe(1.5);
    expect(rd.devs[1]).toEqual({
      id: 1, region: 1, zone: 1, ip: '10.0.0.2', port: 6200, replicationIp: '10.0.0.2', replicationPort: 6200,
      device: 'sdb', weight: 1, meta: '',
    });
  });

  it('reads little-endian rows', () => {
    const rows = Buffer.alloc(4);
    rows.writeUInt16LE(1, 0);
    rows.writeUInt16LE(0, 2);
    const rd = RingData.fromBuffer(
      v1File({ byteorder: 'little', devs: [swiftDev, { ...swiftDev, id: 1 }], part_shift: 31, replica_count: 1 }, rows),
    );
    expect(rowsOf(rd)).toEqual([[1, 0]]);
  });
});

describe('RingData v2', () => {
  it('round-trips and verifies each section checksum', () => {
    const rd = sampleRing(7, 2.5);
    const gz = rd.toBuffer('object.ring.gz', { formatVersion: 2 });
    const back = RingData.fromBuffer(gz, 'v2.ring.gz');
    expect(back.formatVersion).toBe(2);
    expect(back.devs).toEqual(rd.devs);
    expect(rowsOf(back)).toEqual(rowsOf(rd));
    expect(back.replicaCount).toBe(2.5);
    // Flip one byte inside the devices section (uncompressed), re-gzip: checksum mismatch.
    const raw = gunzipSync(gz);
    const at = raw.indexOf(Buffer.from('"sdb1"'));
    expect(at).toBeGreaterThan(0);
    raw[at + 3] = 'x'.charCodeAt(0);
    expect(() => RingData.fromBuffer(gzipSync(raw), 'v2.ring.gz')).toThrow(
      /v2\.ring\.gz: checksum mismatch in section swift\/ring\/devices/,
    );
  });

  it("keeps Swift's trailer layout: the index offset is found 31 bytes before the end", () => {
    const gz = sampleRing(6, 3).toBuffer('object.ring.gz', { formatVersion: 2 });
    const raw = gunzipSync(gz);
    const compressedIndexOffset = raw.readBigUInt64BE(raw.length - 8);
    // 18 bytes: a 5-byte stored-block header and the 8-byte value, then a 5-byte full flush.
    const stored = gz.subarray(gz.length - 31, gz.length - 13);
    expect(stored.subarray(5, 13).readBigUInt64BE(0)).toBe(compressedIndexOffset);
  });
});

describe('bad ring files', () => {
  const good = (): Buffer => sampleRing(6, 3).toBuffer('object.ring.gz');

  it('names the file when it is truncated', async () => {
    const f = join(dir, 'object.ring.gz');
    const g = good();
    await writeFile(f, g.subarray(0, g.length - 20));
    expect(() => RingData.fromFile(f)).toThrow(RingFileError);
    expect(() => RingData.fromFile(f)).toThrow(new RegExp(`^${f}: .*(corrupt or truncated)`));
  });

  it('names the file when it is corrupt or missing', async () => {
    const f = join(dir, 'object.ring.gz');
    const g = good();
    g[g.length - 30] ^= 0xff;
    await writeFile(f, g);
    expect(() => RingData.fromFile(f)).toThrow(new RegExp(`^${f}: `));
    await writeFile(f, 'not a ring at all');
    expect(() => RingData.fromFile(f)).toThrow(new RegExp(`^${f}: not a valid gzip`));
    expect(() => RingData.fromFile(join(dir, 'nope.ring.gz'))).toThrow(/nope\.ring\.gz: cannot read ring file/);
  });

  it('refuses unknown versions, bad magic, truncated rows and references to unknown devices', () => {
    const raw = gunzipSync(good());
    const v3 = Buffer.from(raw);
    v3.writeUInt16BE(3, 4);
    expect(() => RingData.fromBuffer(gzipSync(v3), 'f')).toThrow(/^f: unsupported ring format version 3/);
    expect(() => RingData.fromBuffer(gzipSync(Buffer.from('PICKLE')), 'f')).toThrow(/^f: bad ring magic/);
    expect(() => RingData.fromBuffer(gzipSync(raw.subarray(0, raw.length - 200)), 'f')).toThrow(/short|truncated/);
    expect(() => RingData.fromBuffer(gzipSync(raw.subarray(0, raw.length - 1)), 'f')).toThrow(/odd number/);
    const rows = Buffer.alloc(4);
    rows.writeUInt16LE(7, 0);
    expect(() =>
      RingData.fromBuffer(v1File({ byteorder: 'little', devs: [swiftDev], part_shift: 31, replica_count: 1 }, rows), 'f'),
    ).toThrow(/unknown device 7/);
  });
});
