import type { Logger, SwiftConf, Timestamp } from '@swiftlet/common';

export interface DiskFileManagerOptions {
  /** Folder holding one folder per device (Swift's `devices`, default /srv/node). */
  devices: string;
  /** `mount_check`: a device must be a mount point (else 507). */
  mountCheck: boolean;
  /** `reclaim_age` in seconds (default 604800): older tombstones are deleted by cleanup. */
  reclaimAgeS: number;
  /** `fallocate_reserve`: free space a PUT must leave (default 1 %). */
  fallocateReserve: { percent?: number; bytes?: number };
  /**
   * `read_checksum`: what full reads and received pushes are checked against. `crc32` (default):
   * the body's CRC-32 recorded at PUT time (MD5 for files that record none); `md5`: the ETag, as
   * Swift does, at eight times the CPU.
   */
  readChecksum?: ReadChecksum;
  /** Bodies larger than this many bytes leave the page cache once durable (`keep_cache_size`); undefined: kept. */
  keepCacheSize?: number;
  swiftConf: SwiftConf;
  logger: Logger;
  /** Clock in seconds since the epoch; tests move it. Default Date.now()/1000. */
  now?: () => number;
}

export type ReadChecksum = 'crc32' | 'md5';

export type ObjectState =
  | { kind: 'absent' }
  | { kind: 'tombstone'; timestamp: Timestamp }
  | {
      kind: 'object';
      /** Timestamp of the `.data`. */
      timestamp: Timestamp;
      /** Timestamp of a newer `.meta`, if one is kept. */
      metaTimestamp?: Timestamp;
      /** `.data` metadata, with a newer `.meta`'s metadata replacing user metadata (Swift's POST). */
      metadata: Record<string, string>;
      contentLength: number;
      etag: string;
    };

export type ObjectStateObject = ObjectState & { kind: 'object' };

/** One surviving file of a hash folder, as the replicator exchanges them: `<suffix>/<hash>/<file>`. */
export interface SuffixFiles {
  suffix: string;
  hash: string;
  files: string[];
}
