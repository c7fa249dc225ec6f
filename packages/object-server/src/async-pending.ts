/**
 * Async pendings: container updates that could not be delivered when the object was written,
 * kept durably on the object's device until the object updater delivers them.
 *
 * File: `<devices>/<device>/async_pending[-N]/<hash[-3:]>/<hash>-<timestamp>` (Swift's layout),
 * content one JSON object (Swift pickles a dict; JSON is the documented Swiftlet form):
 *   { "version": 1, "op": "PUT" | "DELETE", "account": "a", "container": "c", "obj": "o",
 *     "policyIndex": 0,
 *     "headers": { "X-Timestamp": "...", "X-Size": "...", "X-Etag": "...", "X-Content-Type": "...",
 *                  "X-Trans-Id": "...", "X-Backend-Storage-Policy-Index": "0" },
 *     "nodes": [ { "ip": "127.0.0.1", "port": 6201, "device": "sdb1", "partition": 17 } ] }
 * `nodes` lists the container replicas still to update; when it is empty or absent the updater
 * looks them up in container.ring.gz. Written via a temporary file, fsync, rename, fsync dir.
 */
import { readdir, readFile, unlink, rmdir } from 'node:fs/promises';
import { join } from 'node:path';
import { mkdirDurable, policySuffix, type Timestamp, writeFileDurable } from '@swiftlet/common';

export interface ContainerNode {
  ip: string;
  port: number;
  device: string;
  partition: number;
}

export interface AsyncPending {
  version: 1;
  op: 'PUT' | 'DELETE';
  account: string;
  container: string;
  obj: string;
  policyIndex: number;
  headers: Record<string, string>;
  nodes: ContainerNode[];
}

export function asyncPendingDirName(policyIndex: number): string {
  return `async_pending${policySuffix(policyIndex)}`;
}

/** `async_pending` -> 0, `async_pending-3` -> 3, anything else -> undefined. */
export function policyOfAsyncDir(name: string): number | undefined {
  if (name === 'async_pending') return 0;
  const m = /^async_pending-(\d+)$/.exec(name);
  return m ? Number(m[1]) : undefined;
}

export function asyncPendingPath(devicePath: string, policyIndex: number, hash: string, timestamp: Timestamp): string {
  return join(devicePath, asyncPendingDirName(policyIndex), hash.slice(-3), `${hash}-${timestamp.internal}`);
}

export async function writeAsyncPending(file: string, pending: AsyncPending): Promise<void> {
  await mkdirDurable(join(file, '..'));
  await writeFileDurable(file, JSON.stringify(pending));
}

export async function readAsyncPending(file: string): Promise<AsyncPending> {
  const data = JSON.parse(await readFile(file, 'utf8')) as AsyncPending;
  if (typeof data !== 'object' || data === null || (data.op !== 'PUT' && data.op !== 'DELETE') || typeof data.account !== 'string') {
    throw new Error(`not an async pending: ${file}`);
  }
  data.nodes ??= [];
  data.headers ??= {};
  data.policyIndex ??= 0;
  return data;
}

/** Counts the async pendings under one device (for recon). */
export async function countAsyncPendings(devicePath: string): Promise<number> {
  let count = 0;
  for (const dir of await readdir(devicePath).catch(() => [] as string[])) {
    if (policyOfAsyncDir(dir) === undefined) continue;
    for (const prefix of await readdir(join(devicePath, dir)).catch(() => [] as string[])) {
      const files = await readdir(join(devicePath, dir, prefix)).catch(() => [] as string[]);
      count += files.filter((f) => !f.startsWith('.')).length;
    }
  }
  return count;
}

export async function removeAsyncPending(file: string): Promise<void> {
  await unlink(file).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/** Removes an empty prefix folder; a folder that is not empty (or gone) is left alone. */
export async function removeIfEmpty(dir: string): Promise<void> {
  await rmdir(dir).catch(() => undefined);
}
