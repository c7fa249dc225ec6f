/**
 * A child process of the hash cache stress test: `writer` writes .data/.ts/.meta files into a
 * few suffixes of one partition; `hasher` reads (and rewrites) the partition's hashes. Bounded by
 * count and time. Prints `started` after its first operation and {"ops": n} on success.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { ConflictError, silentLogger, SwiftConf, Timestamp } from '@swiftlet/common';
import { DiskFileManager } from '../manager.js';

const [mode, devices, partArg, durationArg, minOpsArg] = process.argv.slice(2) as [string, string, string, string, string];
const partition = Number(partArg);
// At least minOps operations and at least durationMs, whichever lasts longer (a loaded machine
// is slow), but never more than 50 x minOps operations or 30 s.
const started = Date.now();
const deadline = started + Number(durationArg);
const hardDeadline = started + 30_000;
const minOps = Number(minOpsArg);
const maxOps = minOps * 50;
export const SUFFIXES = ['aaa', 'bbb', 'ccc', 'ddd'];

const mgr = new DiskFileManager({
  devices,
  mountCheck: false,
  reclaimAgeS: 604800,
  fallocateReserve: {},
  swiftConf: SwiftConf.parse('[swift-hash]\nswift_hash_path_suffix = stress\n'),
  logger: silentLogger(),
});
// A small fixed set of hashes in four suffixes, so that processes collide on the same suffixes.
const hashes = Array.from({ length: 24 }, (_, i) => `${String(i).padStart(29, '0')}${SUFFIXES[i % 4]}`);
const pick = <T>(xs: T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

let ops = 0;
while (ops < maxOps && Date.now() < hardDeadline && (ops < minOps || Date.now() < deadline)) {
  if (mode === 'writer') {
    const df = mgr.diskFileByHash('sda', partition, 0, pick(hashes));
    const r = Math.random();
    try {
      if (r < 0.6) await df.write(Timestamp.now(), {}, Readable.from([randomBytes(64)]), {});
      else if (r < 0.8) await df.writeTombstone(Timestamp.now());
      else await df.writeMeta(Timestamp.now(), { 'X-Object-Meta-N': String(ops) });
    } catch (err) {
      if (!(err instanceof ConflictError)) throw err;
    }
  } else {
    await mgr.getHashes('sda', partition, 0, Math.random() < 0.3 ? { recalculate: [pick(SUFFIXES)] } : {});
  }
  ops++;
  if (ops === 1) process.stdout.write('started\n');
}
process.stdout.write(`${JSON.stringify({ ops })}\n`);
