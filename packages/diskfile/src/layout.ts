/**
 * Names and paths of Swift's object layout:
 *   <devices>/<device>/objects[-N]/<partition>/<suffix>/<hash>/<timestamp>.data|.ts|.meta
 *   <devices>/<device>/tmp/                              writes in progress
 *   <devices>/<device>/quarantined/objects[-N]/<hash>/   damaged objects
 */
import { join } from 'node:path';
import { policySuffix, Timestamp } from '@swiftlet/common';

export type FileKind = 'data' | 'ts' | 'meta';

export interface OnDiskFile {
  name: string;
  timestamp: Timestamp;
  kind: FileKind;
}

export const HASH_RE = /^[0-9a-f]{32}$/;
export const SUFFIX_RE = /^[0-9a-f]{3}$/;
const FILE_RE = /^(\d{10}\.\d{5}(?:_[0-9a-f]{16})?)\.(data|ts|meta)$/;

export const HASHES_FILE = 'hashes';
export const INVALID_FILE = 'hashes.invalid';
/** The journal being consumed by a consolidation (kept until `hashes` records it). */
export const CONSUMING_FILE = 'hashes.invalid.consuming';
export const LOCK_FILE = '.lock';

export function objectsDirName(policyIndex: number): string {
  return `objects${policySuffix(policyIndex)}`;
}

export function suffixOf(hash: string): string {
  return hash.slice(-3);
}

/**
 * Parses `<timestamp>.<kind>`; only the canonical internal form our writers produce is accepted, so
 * that one timestamp has exactly one file name. Anything else is "unexpected" and left alone.
 */
export function parseFileName(name: string): OnDiskFile | undefined {
  const m = FILE_RE.exec(name);
  if (!m) return undefined;
  const ts = Timestamp.tryParse(m[1] as string);
  if (ts === undefined || ts.internal !== m[1]) return undefined;
  return { name, timestamp: ts, kind: m[2] as FileKind };
}

export function fileName(timestamp: Timestamp, kind: FileKind): string {
  return `${timestamp.internal}.${kind}`;
}

/** The partition holding a hash: the top partPower bits of its first four bytes. */
export function partitionOfHash(hash: string, partPower: number): number {
  if (partPower === 0) return 0;
  return parseInt(hash.slice(0, 8), 16) >>> (32 - partPower);
}

export function partitionDir(devicePath: string, policyIndex: number, partition: number): string {
  return join(devicePath, objectsDirName(policyIndex), String(partition));
}

export function hashDir(partDir: string, hash: string): string {
  return join(partDir, suffixOf(hash), hash);
}
