/**
 * The recon cache: one JSON file per server kind (`object.recon`, `container.recon` ...) in
 * `recon_cache_path`, shared by several daemons (replicator, updater, auditor), each owning its
 * own top-level keys. Like Swift's `dump_recon_cache`, an update merges its keys into what is
 * there and replaces the file atomically (not durably), so a reader (the server's `/recon/...`) never sees a
 * half-written file. Writers of one file on one node are serialised through this process only;
 * two daemons racing lose at worst one update of the other's keys until its next write.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '@swiftlet/common';

export function reconCacheFile(reconCachePath: string, kind: string): string {
  return join(reconCachePath, `${kind}.recon`);
}

let chain: Promise<unknown> = Promise.resolve();

/** Merges `entries` into the recon file; a key whose value is `undefined` is removed. */
export function dumpReconCache(file: string, entries: Record<string, unknown>): Promise<void> {
  const run = async (): Promise<void> => {
    let current: Record<string, unknown> = {};
    try {
      const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) current = parsed as Record<string, unknown>;
    } catch {
      // Missing or corrupt: start afresh (Swift does the same); the next write repairs it.
    }
    for (const [k, v] of Object.entries(entries)) {
      if (v === undefined) delete current[k];
      else current[k] = v;
    }
    // Not synced (Swift's dump_recon_cache neither): figures a crash may lose are rewritten by
    // the next pass, and a pass's end no longer waits for the disk.
    await writeFileAtomic(file, JSON.stringify(current) + '\n');
  };
  const p = chain.then(run, run);
  chain = p.catch(() => undefined);
  return p;
}

export async function readReconCache(file: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  } catch {
    return {};
  }
}
