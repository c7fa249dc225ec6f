/**
 * Swift's ring file (`.ring.gz`): the device list and the replica -> partition -> device table.
 * Reads format v1 (either byte order, short last row) and v2 (per-section sha256 verified);
 * writes v1 by default (what Swift 2.30.1 reads) and v2 on request, byte-identical for identical
 * data, so ring md5s can be compared across nodes as with Swift.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { constants as zc, crc32, deflateRawSync, gunzipSync } from 'node:zlib';
import { writeFileDurable } from '@swiftlet/common';

export interface RingDevice {
  id: number;
  region: number;
  zone: number;
  ip: string;
  port: number;
  replicationIp: string;
  replicationPort: number;
  device: string;
  weight: number;
  meta: string;
}

export interface RingNode extends RingDevice {
  index: number;
  handoffIndex?: number;
}

export type RingTable = Uint16Array[] | Uint32Array[];

/** A ring file that cannot be used (corrupt, truncated, unknown version); the message names the file. */
export class RingFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
    options: { cause?: unknown } = {},
  ) {
    super(`${file}: ${reason}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'RingFileError';
  }
}

/** Swift writes this gzip mtime so that identical ring data gives identical bytes. */
export const RING_GZIP_MTIME = 1300507380;
const MAGIC = Buffer.from('R1NG', 'latin1');
/** The builder's "no device" marker in 2-byte tables. */
export const NONE_DEV_ID = 0xffff;

export interface RingDataInit {
  devs: (RingDevice | null)[];
  replica2part2devId: RingTable;
  partShift: number;
  version?: number;
  nextPartPower?: number;
}

export class RingData {
  devs: (RingDevice | null)[];
  replica2part2devId: RingTable;
  partShift: number;
  version?: number;
  nextPartPower?: number;
  /** The format of the file this was read from (1 or 2); undefined for data built in memory. */
  formatVersion?: number;

  constructor(init: RingDataInit) {
    this.devs = init.devs;
    this.replica2part2devId = init.replica2part2devId;
    this.partShift = init.partShift;
    if (init.version !== undefined) this.version = init.version;
    if (init.nextPartPower !== undefined) this.nextPartPower = init.nextPartPower;
  }

  get partPower(): number {
    return 32 - this.partShift;
  }

  get partCount(): number {
    return 2 ** (32 - this.partShift);
  }

  /** Swift's calc_replica_count: full rows plus the fraction the short last row covers. */
  get replicaCount(): number {
    return calcReplicaCount(this.replica2part2devId);
  }

  static fromFile(file: string): RingData {
    let buf: Buffer;
    try {
      buf = readFileSync(file);
    } catch (err) {
      throw new RingFileError(file, `cannot read ring file: ${(err as Error).message}`, { cause: err });
    }
    return RingData.fromBuffer(buf, file);
  }

  static fromBuffer(buf: Buffer, file = '<buffer>'): RingData {
    let raw: Buffer;
    try {
      raw = gunzipSync(buf);
    } catch (err) {
      throw new RingFileError(file, `not a valid gzip'd ring file (corrupt or truncated): ${(err as Error).message}`, {
        cause: err,
      });
    }
    if (raw.length < 6 || !raw.subarray(0, 4).equals(MAGIC)) {
      throw new RingFileError(file, 'bad ring magic (expected R1NG); pickled v0 rings are not supported');
    }
    const fmt = raw.readUInt16BE(4);
    let rd: RingData;
    try {
      if (fmt === 1) rd = parseV1(raw);
      else if (fmt === 2) rd = parseV2(raw);
      else throw new Error(`unsupported ring format version ${fmt}`);
      validateTable(rd);
    } catch (err) {
      throw new RingFileError(file, (err as Error).message, { cause: err });
    }
    rd.formatVersion = fmt;
    return rd;
  }

  /**
   * The gzip'd file bytes. `name` is the ring file's name (its base name minus `.gz` goes into the
   * gzip header, as Python's GzipFile does); the gzip mtime is fixed, so equal data -> equal bytes.
   */
  toBuffer(name: string, opts: { formatVersion?: 1 | 2 } = {}): Buffer {
    const fmt = opts.formatVersion ?? 1;
    const chunks = fmt === 1 ? this.serializeV1() : this.serializeV2(gzipHeader(name).length);
    return gzipAssemble(name, chunks);
  }

  /** Atomic and durable: temporary file, fsync, rename, fsync of the folder. */
  async save(file: string, opts: { formatVersion?: 1 | 2 } = {}): Promise<void> {
    await writeFileDurable(file, this.toBuffer(file, opts));
  }

  private devsJson(): string {
    return '[' + this.devs.map((d) => (d === null ? 'null' : deviceJson(d))).join(', ') + ']';
  }

  private serializeV1(): DeflatePiece[] {
    const rows = this.replica2part2devId;
    const le: Buffer[] = [];
    for (const row of rows) {
      if (row instanceof Uint32Array) {
        const r16 = new Uint16Array(row.length);
        for (let i = 0; i < row.length; i++) {
          const v = row[i] as number;
          if (v > 0xffff) throw new Error(`device id ${v} does not fit a v1 ring (2-byte ids); write format 2`);
          r16[i] = v;
        }
        le.push(rowBytes(r16, 'little'));
      } else {
        le.push(rowBytes(row, 'little'));
      }
    }
    // Keys in sorted order, Python's json.dumps(sort_keys=True) spacing, so Swift's bytes match.
    let header = `{"byteorder": "little", "devs": ${this.devsJson()}`;
    if (this.nextPartPower !== undefined) header += `, "next_part_power": ${this.nextPartPower}`;
    header += `, "part_shift": ${this.partShift}, "replica_count": ${rows.length}`;
    if (this.version !== undefined) header += `, "version": ${this.version}`;
    header += '}';
    const json = Buffer.from(asciiJson(header), 'latin1');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(json.length);
    return [
      piece(magicBytes(1), 0, true),
      piece(Buffer.concat([len, json, ...le]), 9, false),
    ];
  }

  private serializeV2(headerLen: number): DeflatePiece[] {
    const rows = this.replica2part2devId;
    const idBytes = rows.length > 0 && rows[0] instanceof Uint32Array ? 4 : 2;
    const meta: string[] = [];
    meta.push(`"dev_id_bytes": ${idBytes}`);
    if (this.nextPartPower !== undefined) meta.push(`"next_part_power": ${this.nextPartPower}`);
    meta.push(`"part_shift": ${this.partShift}`);
    meta.push(`"replica_count": ${pyFloat(this.replicaCount)}`);
    meta.push(`"version": ${this.version === undefined ? 'null' : this.version}`);
    const sections: [string, Buffer][] = [
      ['swift/ring/metadata', blob(Buffer.from(asciiJson(`{${meta.join(', ')}}`), 'latin1'))],
      ['swift/ring/devices', blob(Buffer.from(asciiJson(this.devsJson()), 'latin1'))],
      ['swift/ring/assignments', blob(Buffer.concat(rows.map((r) => rowBytes(r, 'big'))))],
    ];
    // Each section is compressed on its own (full flush boundary), so the compressed offsets of
    // the index are known as we go.
    const pieces: DeflatePiece[] = [piece(magicBytes(2), 0, true)];
    let cpos = headerLen + (pieces[0] as DeflatePiece).compressed.length;
    let upos = 6;
    const index: string[] = [];
    for (const [name, body] of sections) {
      const p = piece(body, 9, true);
      const clen = p.compressed.length;
      const sha = createHash('sha256').update(body).digest('hex');
      index.push(`"${name}": [${cpos}, ${upos}, ${cpos + clen}, ${upos + body.length}, "sha256", "${sha}"]`);
      pieces.push(p);
      cpos += clen;
      upos += body.length;
    }
    pieces.push(piece(blob(Buffer.from(`{${index.sort().join(', ')}}`, 'latin1')), 9, true));
    // Uncompressed, so that a reader finds the index offset 31 bytes before the end (as Swift's).
    pieces.push(piece(u64(upos), 0, true));
    pieces.push(piece(u64(cpos), 0, true));
    return pieces;
  }
}

export function calcReplicaCount(rows: RingTable): number {
  if (rows.length === 0) return 0;
  const first = rows[0] as Uint16Array | Uint32Array;
  const last = rows[rows.length - 1] as Uint16Array | Uint32Array;
  return rows.length - 1 + (first.length === 0 ? 0 : last.length / first.length);
}

// ---------------------------------------------------------------------------------------------
// Parsing

interface DevJson {
  id?: unknown;
  region?: unknown;
  zone?: unknown;
  ip?: unknown;
  port?: unknown;
  replication_ip?: unknown;
  replication_port?: unknown;
  device?: unknown;
  weight?: unknown;
  meta?: unknown;
}

function deviceFromJson(d: unknown, pos: number): RingDevice | null {
  if (d === null) return null;
  if (typeof d !== 'object' || Array.isArray(d)) throw new Error(`device ${pos} is not an object`);
  const j = d as DevJson;
  const num = (v: unknown, key: string, dflt?: number): number => {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`device ${pos}: bad or missing "${key}"`);
    return v;
  };
  const str = (v: unknown, key: string, dflt?: string): string => {
    if (v === undefined && dflt !== undefined) return dflt;
    if (typeof v !== 'string') throw new Error(`device ${pos}: bad or missing "${key}"`);
    return v;
  };
  const id = num(j.id, 'id', pos);
  if (id !== pos) throw new Error(`device at position ${pos} has id ${id}`);
  const ip = str(j.ip, 'ip');
  const port = num(j.port, 'port');
  return {
    id,
    region: num(j.region, 'region', 1),
    zone: num(j.zone, 'zone'),
    ip,
    port,
    replicationIp: str(j.replication_ip, 'replication_ip', ip),
    replicationPort: num(j.replication_port, 'replication_port', port),
    device: str(j.device, 'device'),
    weight: num(j.weight, 'weight', 0),
    meta: str(j.meta, 'meta', ''),
  };
}

function devicesFromJson(v: unknown): (RingDevice | null)[] {
  if (!Array.isArray(v)) throw new Error('"devs" is not a list');
  return v.map((d, i) => deviceFromJson(d, i));
}

function partShiftFromJson(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 32) throw new Error(`bad part_shift ${String(v)}`);
  return v;
}

function optInt(v: unknown, key: string): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`bad ${key} ${String(v)}`);
  return v;
}

function parseJson(buf: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(buf.toString('utf8'));
  } catch (err) {
    throw new Error(`${what} is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${what} is not a JSON object`);
  return v as Record<string, unknown>;
}

function parseV1(raw: Buffer): RingData {
  if (raw.length < 10) throw new Error('truncated ring header');
  const jsonLen = raw.readUInt32BE(6);
  if (10 + jsonLen > raw.length) throw new Error('truncated ring header JSON');
  const h = parseJson(raw.subarray(10, 10 + jsonLen), 'ring header');
  const partShift = partShiftFromJson(h['part_shift']);
  const replicaCount = h['replica_count'];
  if (typeof replicaCount !== 'number' || !Number.isInteger(replicaCount) || replicaCount < 0) {
    throw new Error(`bad replica_count ${String(replicaCount)}`);
  }
  const byteorder = h['byteorder'] ?? 'little';
  if (byteorder !== 'little' && byteorder !== 'big') throw new Error(`bad byteorder ${String(byteorder)}`);
  const parts = 2 ** (32 - partShift);
  const rows: Uint16Array[] = [];
  let pos = 10 + jsonLen;
  for (let r = 0; r < replicaCount; r++) {
    const n = Math.min(2 * parts, raw.length - pos);
    if (n % 2 !== 0) throw new Error(`row ${r} has an odd number of bytes (truncated)`);
    if (n < 2 * parts && r !== replicaCount - 1) throw new Error(`row ${r} is short (truncated ring file)`);
    rows.push(readRow16(raw, pos, n / 2, byteorder === 'big'));
    pos += n;
  }
  if (pos !== raw.length) throw new Error(`${raw.length - pos} unexpected bytes after the last row`);
  return new RingData({
    devs: devicesFromJson(h['devs']),
    replica2part2devId: rows,
    partShift,
    version: optInt(h['version'], 'version'),
    nextPartPower: optInt(h['next_part_power'], 'next_part_power'),
  });
}

function readRow16(raw: Buffer, pos: number, count: number, bigEndian: boolean): Uint16Array {
  const row = new Uint16Array(count);
  if (!bigEndian && (raw.byteOffset + pos) % 2 === 0) {
    row.set(new Uint16Array(raw.buffer, raw.byteOffset + pos, count));
  } else if (!bigEndian) {
    for (let i = 0; i < count; i++) row[i] = raw.readUInt16LE(pos + 2 * i);
  } else {
    for (let i = 0; i < count; i++) row[i] = raw.readUInt16BE(pos + 2 * i);
  }
  return row;
}

type IndexEntry = [number, number, number, number, string, string];

function parseV2(raw: Buffer): RingData {
  if (raw.length < 6 + 16) throw new Error('truncated v2 ring');
  const indexStart = Number(raw.readBigUInt64BE(raw.length - 16));
  if (indexStart + 8 > raw.length - 16) throw new Error('bad v2 index offset');
  const indexLen = Number(raw.readBigUInt64BE(indexStart));
  if (indexStart + 8 + indexLen > raw.length - 16) throw new Error('truncated v2 index');
  const index = parseJson(raw.subarray(indexStart + 8, indexStart + 8 + indexLen), 'v2 index');
  const section = (name: string): Buffer => {
    const e = index[name] as IndexEntry | undefined;
    if (!Array.isArray(e) || e.length < 6) throw new Error(`v2 ring lacks section ${name}`);
    const [, ustart, , uend, method, digest] = e;
    if (!(ustart >= 6 && uend >= ustart + 8 && uend <= raw.length)) throw new Error(`bad index entry for ${name}`);
    const len = Number(raw.readBigUInt64BE(ustart));
    if (8 + len !== uend - ustart) throw new Error(`inconsistent size of section ${name}`);
    if (!['md5', 'sha1', 'sha256', 'sha512'].includes(method)) throw new Error(`unsupported checksum ${method} for ${name}`);
    const got = createHash(method).update(raw.subarray(ustart, uend)).digest('hex');
    if (got !== digest) throw new Error(`checksum mismatch in section ${name}: ${got} found, ${digest} expected`);
    return raw.subarray(ustart + 8, uend);
  };
  const meta = parseJson(section('swift/ring/metadata'), 'v2 metadata');
  const devsBuf = section('swift/ring/devices');
  let devsJson: unknown;
  try {
    devsJson = JSON.parse(devsBuf.toString('utf8'));
  } catch (err) {
    throw new Error(`v2 devices section is not valid JSON: ${(err as Error).message}`);
  }
  const partShift = partShiftFromJson(meta['part_shift']);
  const idBytes = meta['dev_id_bytes'] ?? 2;
  if (idBytes !== 2 && idBytes !== 4) throw new Error(`bad dev_id_bytes ${String(idBytes)}`);
  // The section's own length prefix is the table size in bytes; rows follow in network order.
  const table = section('swift/ring/assignments');
  if (table.length % idBytes !== 0) throw new Error('assignments size is not a multiple of dev_id_bytes');
  const parts = 2 ** (32 - partShift);
  const rowBytesMax = parts * idBytes;
  const rows: (Uint16Array | Uint32Array)[] = [];
  for (let pos = 0; pos < table.length; pos += rowBytesMax) {
    const n = Math.min(rowBytesMax, table.length - pos) / idBytes;
    const row = idBytes === 2 ? new Uint16Array(n) : new Uint32Array(n);
    if (idBytes === 2) for (let i = 0; i < n; i++) row[i] = table.readUInt16BE(pos + 2 * i);
    else for (let i = 0; i < n; i++) row[i] = table.readUInt32BE(pos + 4 * i);
    rows.push(row);
  }
  return new RingData({
    devs: devicesFromJson(devsJson),
    replica2part2devId: rows as RingTable,
    partShift,
    version: optInt(meta['version'], 'version'),
    nextPartPower: optInt(meta['next_part_power'], 'next_part_power'),
  });
}

/** Every slot must name an existing device, and only the last row may be short. */
function validateTable(rd: RingData): void {
  const rows = rd.replica2part2devId;
  const parts = rd.partCount;
  const devs = rd.devs;
  for (let r = 0; r < rows.length; r++) {
    const row = rows[r] as Uint16Array | Uint32Array;
    if (row.length > parts || (row.length < parts && r !== rows.length - 1)) {
      throw new Error(`row ${r} has ${row.length} entries for ${parts} partitions`);
    }
    for (let p = 0; p < row.length; p++) {
      const id = row[p] as number;
      if (id >= devs.length || devs[id] === null) {
        throw new Error(`partition ${p} replica ${r} refers to unknown device ${id}`);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Writing

interface DeflatePiece {
  data: Buffer;
  compressed: Buffer;
  /** true: ends with a full flush (byte aligned, compressor state reset); false: ends the stream. */
  flush: boolean;
}

function piece(data: Buffer, level: number, flush: boolean): DeflatePiece {
  const compressed = deflateRawSync(data, { level, finishFlush: flush ? zc.Z_FULL_FLUSH : zc.Z_FINISH });
  return { data, compressed, flush };
}

function gzipHeader(name: string): Buffer {
  let fname = basename(name);
  if (fname.endsWith('.gz')) fname = fname.slice(0, -3);
  const nameBytes = Buffer.from(fname, 'latin1');
  const h = Buffer.alloc(10);
  h[0] = 0x1f;
  h[1] = 0x8b;
  h[2] = 8; // deflate
  h[3] = nameBytes.length > 0 ? 0x08 : 0; // FNAME
  h.writeUInt32LE(RING_GZIP_MTIME, 4);
  h[8] = 2; // XFL: best compression, as Python's GzipFile at level 9
  h[9] = 0xff; // OS unknown, as Python writes
  return nameBytes.length > 0 ? Buffer.concat([h, nameBytes, Buffer.from([0])]) : h;
}

/**
 * A gzip member from independently compressed raw deflate pieces: each flushed piece ends
 * byte-aligned with no back-references beyond it, so the pieces concatenate into one valid stream
 * (the trick Swift uses to store the magic uncompressed and to make v2 sections seekable).
 */
function gzipAssemble(name: string, pieces: DeflatePiece[]): Buffer {
  const out: Buffer[] = [gzipHeader(name)];
  let crc = 0;
  let size = 0;
  for (const p of pieces) {
    out.push(p.compressed);
    crc = crc32(p.data, crc);
    size += p.data.length;
  }
  if (pieces.length === 0 || (pieces[pieces.length - 1] as DeflatePiece).flush) {
    out.push(deflateRawSync(Buffer.alloc(0), { level: 0, finishFlush: zc.Z_FINISH }));
  }
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc >>> 0, 0);
  trailer.writeUInt32LE(size % 2 ** 32, 4);
  out.push(trailer);
  return Buffer.concat(out);
}

function magicBytes(version: number): Buffer {
  const b = Buffer.alloc(6);
  MAGIC.copy(b);
  b.writeUInt16BE(version, 4);
  return b;
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

function blob(body: Buffer): Buffer {
  return Buffer.concat([u64(body.length), body]);
}

function rowBytes(row: Uint16Array | Uint32Array, order: 'little' | 'big'): Buffer {
  const size = row.BYTES_PER_ELEMENT;
  const b = Buffer.alloc(row.length * size);
  if (size === 2) {
    if (order === 'little') for (let i = 0; i < row.length; i++) b.writeUInt16LE(row[i] as number, 2 * i);
    else for (let i = 0; i < row.length; i++) b.writeUInt16BE(row[i] as number, 2 * i);
  } else if (order === 'little') {
    for (let i = 0; i < row.length; i++) b.writeUInt32LE(row[i] as number, 4 * i);
  } else {
    for (let i = 0; i < row.length; i++) b.writeUInt32BE(row[i] as number, 4 * i);
  }
  return b;
}

/** Python's repr of a float: integers keep a trailing `.0`. */
export function pyFloat(n: number): string {
  if (Number.isInteger(n) && Math.abs(n) < 1e16) return `${n}.0`;
  if (n === Infinity) return 'Infinity';
  if (n === -Infinity) return '-Infinity';
  if (Number.isNaN(n)) return 'NaN';
  return String(n);
}

/** json.dumps(ensure_ascii=True): non-ASCII as \uXXXX escapes. */
function asciiJson(s: string): string {
  return s.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One device as Swift's builder writes it: sorted keys, float weight. */
function deviceJson(d: RingDevice): string {
  return (
    `{"device": ${JSON.stringify(d.device)}, "id": ${d.id}, "ip": ${JSON.stringify(d.ip)}, ` +
    `"meta": ${JSON.stringify(d.meta)}, "port": ${d.port}, "region": ${d.region}, ` +
    `"replication_ip": ${JSON.stringify(d.replicationIp)}, "replication_port": ${d.replicationPort}, ` +
    `"weight": ${pyFloat(d.weight)}, "zone": ${d.zone}}`
  );
}
