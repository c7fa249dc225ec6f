/**
 * The diskfile's native module (native/diskfile.c, built by the Makefile): the calls Node has no
 * binding for. Without it (no C compiler at build time) the diskfile works the same, slower: the
 * object server says so once at start.
 */
import { createRequire } from 'node:module';

export interface DiskfileAddon {
  /** posix_fadvise(fd, offset, length, POSIX_FADV_DONTNEED): 0 or an errno. */
  dropCache(fd: number, offset: number, length: number): number;
  /**
   * On the thread pool, as one job, the end of a write: with `body`, first create tmp (it must not
   * exist) with those bytes; append `line` to the suffix journal `journal` (creating it); syncfs
   * (the entry, and the body, durable before the link can be); make target's folder;
   * link(tmp, target) (rename over an existing target); syncfs; append `line` again, checked as
   * hash-cache.ts says; unlink tmp. Resolves with 1 when it made target's folder, else 0. Rejects with an error shaped as
   * Node's fs errors (code, errno, syscall, path); tmp may be left behind then.
   */
  linkAndSync(tmp: string, target: string, journal: string, line: string, body?: Buffer): Promise<number>;
  /**
   * On the thread pool, as one job, the ends of many small writes on one filesystem (group
   * commit): write i is what linkAndSync(tmps[i], targets[i], journals[i], lines[i], bodies[i])
   * does, but the flushes are shared: create every
   * tmp file, syncfs of `syncDir`'s filesystem, journal and link each, syncfs, journal each again
   * and unlink its tmp name. Resolves with one entry per write: 0 or 1 as linkAndSync, or the
   * write's error (a failed syncfs fails every write still going).
   */
  commitFiles(
    syncDir: string,
    tmps: string[],
    targets: string[],
    journals: string[],
    lines: string[],
    bodies: Buffer[],
  ): Promise<(number | NodeJS.ErrnoException)[]>;
  /**
   * On the thread pool, as one job: creates each of `paths` (it must not exist) with the next
   * `lengths[i]` bytes of `bodies`, and closes it; no fsync. Stops at the first failure.
   */
  writeFiles(paths: string[], bodies: Buffer, lengths: number[]): Promise<void>;
  /**
   * On the thread pool, as one job: syncfs of `syncDir`'s filesystem (a folder path, or a folder fd
   * opened before the files were written, so that a writeback error of theirs is reported), rename each of `tmps` to its
   * target (making the target's folder and its parents), syncfs again. Resolves with a 1 for each
   * target whose folder the job made. On a failure the files before the failing one are published.
   */
  publishFiles(syncDir: string | number, tmps: string[], targets: string[]): Promise<Buffer>;
}

/** Resolved through this package's exports, so that bundled programs find it too. */
const ADDON = '@swiftlet/diskfile/native/diskfile.node';

let addon: DiskfileAddon | null | undefined;
let loadError = '';

export function nativeAddon(): DiskfileAddon | null {
  if (addon === undefined) {
    try {
      addon = createRequire(import.meta.url)(ADDON) as DiskfileAddon;
    } catch (err) {
      addon = null;
      loadError = (err as Error).message.split('\n')[0] ?? String(err);
    }
  }
  return addon;
}

/** Why the native module is not loaded, or undefined when it is. */
export function nativeAddonUnavailable(): string | undefined {
  return nativeAddon() === null ? `native diskfile module not loaded (${loadError}); run make build` : undefined;
}

/** For tests: run without the module (true) or with it again (false). */
export function disableNativeAddon(disabled: boolean): void {
  addon = disabled ? null : undefined;
  if (disabled) loadError = 'disabled';
}
