/**
 * The builder file: our own JSON document, gzip'd (format documented in packages/ring/README.md).
 * Holds everything a rebalance needs later: devices, the assignment table, last-moves and their
 * epoch (min_part_hours), gather start, pending removals, overload, version and id.
 */
import { readFile, access } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { writeFileDurable } from '@swiftlet/common';
import { BuilderFileError } from './errors.js';
import { NONE, RingBuilder, type BuilderDevice, type BuilderState } from './ring-builder.js';

export const BUILDER_FORMAT = 'swiftlet-ring-builder';
export const BUILDER_FORMAT_VERSION = 1;

function encodeRow(row: Uint32Array, idBytes: 2 | 4): string {
  const buf = Buffer.alloc(row.length * idBytes);
  if (idBytes === 2) for (let i = 0; i < row.length; i++) buf.writeUInt16LE(row[i] === NONE ? 0xffff : row[i]!, i * 2);
  else for (let i = 0; i < row.length; i++) buf.writeUInt32LE(row[i]!, i * 4);
  return buf.toString('base64');
}

function decodeRow(text: unknown, idBytes: 2 | 4, fail: (m: string) => never): Uint32Array {
  if (typeof text !== 'string') fail('a table row is not a base64 string');
  const buf = Buffer.from(text, 'base64');
  if (buf.length % idBytes) fail(`a table row has ${buf.length} bytes, not a multiple of ${idBytes}`);
  const row = new Uint32Array(buf.length / idBytes);
  if (idBytes === 2) {
    for (let i = 0; i < row.length; i++) {
      const v = buf.readUInt16LE(i * 2);
      row[i] = v === 0xffff ? NONE : v;
    }
  } else {
    for (let i = 0; i < row.length; i++) row[i] = buf.readUInt32LE(i * 4);
  }
  return row;
}

export function builderToBuffer(b: RingBuilder): Buffer {
  const s = b.toState();
  const idBytes: 2 | 4 = s.devs.length <= 0xffff ? 2 : 4;
  const doc = {
    format: BUILDER_FORMAT,
    formatVersion: BUILDER_FORMAT_VERSION,
    id: s.id,
    partPower: s.partPower,
    replicas: s.replicas,
    minPartHours: s.minPartHours,
    overload: s.overload,
    version: s.version,
    devsChanged: s.devsChanged,
    dispersion: s.dispersion,
    lastPartMovesEpoch: s.lastPartMovesEpoch,
    lastPartGatherStart: s.lastPartGatherStart,
    removeDevs: s.removeDevs,
    devs: s.devs,
    devIdBytes: idBytes,
    replica2part2devId: s.rows ? s.rows.map((r) => encodeRow(r, idBytes)) : null,
    lastPartMoves: Buffer.from(s.lastPartMoves.buffer, s.lastPartMoves.byteOffset, s.lastPartMoves.length).toString('base64'),
  };
  return gzipSync(JSON.stringify(doc), { level: 6 });
}

const num = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
const int = (x: unknown): x is number => typeof x === 'number' && Number.isInteger(x);

export function builderFromBuffer(buf: Buffer, file: string): RingBuilder {
  const fail = (m: string): never => {
    throw new BuilderFileError(file, m);
  };
  let text: string;
  try {
    text = gunzipSync(buf).toString('utf8');
  } catch (err) {
    if (buf[0] === 0x80) fail('is a Swift (pickle) builder file; rebuild it with swiftlet-ring-builder');
    throw new BuilderFileError(file, 'corrupt builder file (not gzip)', { cause: err });
  }
  let doc: Record<string, unknown>;
  try {
    doc = JSON.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw new BuilderFileError(file, 'corrupt builder file (bad JSON)', { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || doc.format !== BUILDER_FORMAT) fail('not a swiftlet builder file');
  if (doc.formatVersion !== BUILDER_FORMAT_VERSION) fail(`unsupported builder format version ${JSON.stringify(doc.formatVersion)}`);
  const { partPower, replicas, minPartHours, overload, version, lastPartMovesEpoch, lastPartGatherStart, dispersion } = doc;
  if (!int(partPower) || partPower < 1 || partPower > 32) fail(`bad partPower ${JSON.stringify(partPower)}`);
  if (!num(replicas) || replicas < 1) fail(`bad replicas ${JSON.stringify(replicas)}`);
  if (!int(minPartHours) || minPartHours < 0) fail(`bad minPartHours ${JSON.stringify(minPartHours)}`);
  if (!num(overload) || overload < 0) fail(`bad overload ${JSON.stringify(overload)}`);
  if (!int(version) || !num(lastPartMovesEpoch) || !int(lastPartGatherStart) || !num(dispersion)) fail('bad counters');
  const parts = 2 ** (partPower as number);
  if (!Array.isArray(doc.devs)) fail('devs is not a list');
  const devs = (doc.devs as unknown[]).map((d, i): BuilderDevice | null => {
    if (d === null) return null;
    const x = d as Record<string, unknown>;
    if (
      typeof x !== 'object' || x.id !== i || !int(x.region) || !int(x.zone) || typeof x.ip !== 'string' || !int(x.port) ||
      typeof x.replicationIp !== 'string' || !int(x.replicationPort) || typeof x.device !== 'string' || !num(x.weight) ||
      typeof x.meta !== 'string' || !int(x.parts) || !num(x.partsWanted)
    ) {
      fail(`bad device at index ${i}`);
    }
    return {
      id: i, region: x.region as number, zone: x.zone as number, ip: x.ip as string, port: x.port as number,
      replicationIp: x.replicationIp as string, replicationPort: x.replicationPort as number, device: x.device as string,
      weight: x.weight as number, meta: x.meta as string, parts: x.parts as number, partsWanted: x.partsWanted as number,
    };
  });
  const idBytes = doc.devIdBytes;
  if (idBytes !== 2 && idBytes !== 4) fail(`bad devIdBytes ${JSON.stringify(idBytes)}`);
  let rows: Uint32Array[] | null = null;
  if (doc.replica2part2devId !== null) {
    if (!Array.isArray(doc.replica2part2devId)) fail('replica2part2devId is not a list');
    rows = (doc.replica2part2devId as unknown[]).map((r) => decodeRow(r, idBytes as 2 | 4, fail));
    rows.forEach((row, r) => {
      const last = r === rows!.length - 1;
      if (row.length > parts || (!last && row.length !== parts)) fail(`table row ${r} has ${row.length} entries for ${parts} partitions`);
      for (const d of row) if (d !== NONE && !devs[d]) fail(`table row ${r} names device ${d}, which does not exist`);
    });
  }
  const lpm = Buffer.from(typeof doc.lastPartMoves === 'string' ? doc.lastPartMoves : '', 'base64');
  if (lpm.length !== parts) fail(`lastPartMoves has ${lpm.length} entries for ${parts} partitions`);
  if (!Array.isArray(doc.removeDevs) || !(doc.removeDevs as unknown[]).every((id) => int(id) && devs[id])) fail('bad removeDevs');
  const state: BuilderState = {
    partPower: partPower as number,
    replicas: replicas as number,
    minPartHours: minPartHours as number,
    overload: overload as number,
    version: version as number,
    id: typeof doc.id === 'string' ? doc.id : null,
    devsChanged: doc.devsChanged === true,
    devs,
    rows,
    lastPartMoves: new Uint8Array(lpm),
    lastPartMovesEpoch: lastPartMovesEpoch as number,
    lastPartGatherStart: lastPartGatherStart as number,
    removeDevs: doc.removeDevs as number[],
    dispersion: dispersion as number,
  };
  return RingBuilder.fromState(state);
}

export async function loadBuilderFile(file: string): Promise<RingBuilder> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new BuilderFileError(file, code === 'ENOENT' ? 'builder file not found' : `cannot read builder file (${code})`, { cause: err });
  }
  return builderFromBuffer(buf, file);
}

const exists = (p: string): Promise<boolean> => access(p).then(() => true, () => false);

/** Atomic durable write, plus a copy in `backups/<unix-ts>.<name>` (`<ts>_<n>.<name>` if that is taken). */
export async function saveBuilderFile(b: RingBuilder, file: string): Promise<void> {
  const data = builderToBuffer(b);
  const ts = Math.trunc(Date.now() / 1000);
  const dir = join(dirname(file), 'backups');
  let backup = join(dir, `${ts}.${basename(file)}`);
  for (let n = 1; await exists(backup); n++) backup = join(dir, `${ts}_${n}.${basename(file)}`);
  await writeFileDurable(backup, data);
  await writeFileDurable(file, data);
}
