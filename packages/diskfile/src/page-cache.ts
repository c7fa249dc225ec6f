/**
 * Dropping written bodies from the page cache, as Swift's drop_buffer_cache does.
 *
 * Why: a large body left in the page cache takes memory that the node's inodes, folders and
 * small hot objects need more, and every fresh page the kernel hands out for the next large body
 * costs more than one it recycles. Measured here, 1 GiB written in 1 MiB writes with an
 * fdatasync every 32 MiB: 0.64-1.40 s of system CPU without dropping, 0.22-0.27 s when each
 * flushed range is dropped; a 1 GiB S3 upload through a 3-replica cluster: 4.5-5.2 s of CPU per
 * object server without, 3.0-3.9 s with (bench/RESULTS.md).
 *
 * Node has no binding for posix_fadvise(2): native/diskfile.c (native.ts) is a small Node-API module the
 * Makefile builds. Without it (no C compiler at build time) nothing is dropped, which costs speed
 * only; the object server says so once at start (nativeAddonUnavailable).
 */
import { nativeAddon } from './native.js';

/**
 * Asks the kernel to drop `[offset, offset + length)` of `fd` from the page cache (length 0: to
 * the end of the file). Only clean pages go, so call it after the range is flushed. Advice only:
 * a refusal (an errno) changes nothing on disk, and is returned for the caller to ignore.
 */
export function dropPageCache(fd: number, offset: number, length: number): number {
  return nativeAddon()?.dropCache(fd, offset, length) ?? 0;
}
