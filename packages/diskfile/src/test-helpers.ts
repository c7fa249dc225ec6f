/** Helpers for this package's unit tests (not exported from index.ts). */
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { silentLogger, SwiftConf } from '@swiftlet/common';
import { DiskFileManager } from './manager.js';
import type { DiskFileManagerOptions } from './types.js';

export const swiftConf = SwiftConf.parse('[swift-hash]\nswift_hash_path_suffix = unit-test\n');

export interface TestTree {
  root: string;
  devices: string;
  mgr: DiskFileManager;
  cleanup: () => Promise<void>;
}

export async function makeTree(opts: Partial<DiskFileManagerOptions> = {}, devices = ['sda']): Promise<TestTree> {
  const root = await mkdtemp(join(tmpdir(), 'swiftlet-diskfile-'));
  const devDir = join(root, 'devices');
  for (const d of devices) await mkdir(join(devDir, d), { recursive: true });
  const mgr = new DiskFileManager({
    devices: devDir,
    mountCheck: false,
    reclaimAgeS: 604800,
    fallocateReserve: { percent: 0 },
    swiftConf,
    logger: silentLogger(),
    ...opts,
  });
  return { root, devices: devDir, mgr, cleanup: () => rm(root, { recursive: true, force: true }) };
}

export function bodyOf(data: string | Buffer): Readable {
  return Readable.from([typeof data === 'string' ? Buffer.from(data) : data]);
}

export async function readAll(stream: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}
