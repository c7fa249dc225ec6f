/** Replication helpers: sender listing, receiver's wanted list, tar receive, handoff removal. */
import type { DiskFileManager } from './manager.js';
import type { SuffixFiles } from './types.js';

export async function* listSuffixFiles(
  _mgr: DiskFileManager,
  _device: string,
  _partition: number,
  _policyIndex: number,
  _suffixes: string[],
): AsyncIterable<SuffixFiles> {
  throw new Error('not implemented yet');
}

export async function missingFiles(
  _mgr: DiskFileManager,
  _device: string,
  _partition: number,
  _policyIndex: number,
  _offered: Iterable<string>,
): Promise<string[]> {
  throw new Error('not implemented yet');
}

export async function receiveTar(
  _mgr: DiskFileManager,
  _device: string,
  _partition: number,
  _policyIndex: number,
  _tar: NodeJS.ReadableStream,
  _opts: { maxEntryBytes?: number; partPower?: number },
): Promise<{ received: number; skipped: number }> {
  throw new Error('not implemented yet');
}

export async function removePushed(
  _mgr: DiskFileManager,
  _device: string,
  _partition: number,
  _policyIndex: number,
  _pushed: Iterable<string>,
): Promise<{ removed: number; kept: number }> {
  throw new Error('not implemented yet');
}
