/**
 * The environment each Swiftlet program runs with. The systemd units in etc/systemd carry the
 * same `Environment=` lines (a test keeps the two equal), so the all-in-one cluster and the
 * benchmarks run what operators run.
 */

/**
 * glibc returns the top of its heap to the kernel whenever more than 128 KiB is free there. A
 * server streaming a large body frees its socket buffers by the megabyte at every garbage
 * collection, so the next buffers page-fault fresh memory in again: through the proxy, a 1 GiB
 * GET cost 6.7 s of CPU with the default and 1.4-3.0 s with a 32 MiB threshold (bench/RESULTS.md).
 */
const MALLOC_TRIM_THRESHOLD = String(32 * 1024 * 1024);

/**
 * And a fixed mmap threshold: glibc's default one moves with what was freed before, so whether a
 * buffer came from the heap or from a fresh mapping (page faults again) depended on the process's
 * history. Runs of the same 1 GiB GET through the proxy gave 75-314 MiB/s with it, 216-287 with
 * 4 MiB (perf: page faults 19 % of the proxy's samples → 2 %).
 */
const MALLOC_MMAP_THRESHOLD = String(4 * 1024 * 1024);

/** Every program: see the two constants above. */
const ALLOCATOR = { MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD, MALLOC_MMAP_THRESHOLD_: MALLOC_MMAP_THRESHOLD };

/** Program name (as in `swiftlet-<program>`) -> its environment. */
export const PROGRAM_ENVIRONMENT: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'object-server': {
    // fsync and file I/O run on libuv's thread pool (default 4 threads): room for many
    // concurrent durable writes.
    UV_THREADPOOL_SIZE: '32',
    // A 4 MiB young generation (V8's default is 16 MiB per semi-space): request garbage is
    // collected sooner, which keeps the resident set near 100 MiB under 64 concurrent requests.
    NODE_OPTIONS: '--max-semi-space-size=4',
    ...ALLOCATOR,
  },
  // A storage node's servers in one process (swiftlet-storage-server): the object server's settings.
  'storage-server': {
    UV_THREADPOOL_SIZE: '32',
    NODE_OPTIONS: '--max-semi-space-size=4',
    ...ALLOCATOR,
  },
  'proxy-server': {
    // A 2 MiB young generation. With V8's 16 MiB, body chunks in flight to three object servers
    // outlived too few scavenges and every 64 MiB of them started a full mark-compact (75-90 per
    // GiB uploaded); 1 MiB was chosen against that. Now that each chunk is freed once written
    // (releaseBuffer), 2 MiB costs a small GetObject 0.61-0.63 ms of proxy CPU against 0.72-0.75
    // with 1 MiB, for 2-3 MiB more at the peak (bench/RESULTS.md).
    NODE_OPTIONS: '--max-semi-space-size=2',
    ...ALLOCATOR,
  },
  'container-server': ALLOCATOR,
  'account-server': ALLOCATOR,
  'object-replicator': ALLOCATOR,
  'object-updater': ALLOCATOR,
  'container-updater': ALLOCATOR,
};

/**
 * Node flags that NODE_OPTIONS refuses, per program. Each program's bin carries the same ones in
 * its `#!/usr/bin/env -S node ...` line (which the systemd units run); a test keeps the two equal.
 */
export const PROGRAM_NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
  // V8 lets the old generation grow to up to 4x what survived the last full collection; under 64
  // concurrent small PUTs an object server's heap reached 41 MiB that way (RSS 106-107 MiB against
  // #3's 100). Growth capped at 1.5x: 91-94 MiB, requests per second within the spread
  // (bench/RESULTS.md). Body chunks no longer need room in the heap's budget: the object server
  // and the proxy free each one once written (@swiftlet/common releaseBuffer), which is why the
  // 48 MiB old-space floor they ran with before is gone.
  'object-server': ['--heap-growing-percent=50'],
  'storage-server': ['--heap-growing-percent=50'],
  // The proxy likewise: without the floor and with V8's default growth it entered the 1 GiB
  // transfers of bench/s3 at 140 MiB after the small-object cells (#6 bounds it at 150).
  'proxy-server': ['--heap-growing-percent=50'],
};

/** The node flags to start `program` with (see PROGRAM_NODE_FLAGS). */
export function programNodeFlags(program: string): readonly string[] {
  return PROGRAM_NODE_FLAGS[program] ?? [];
}

/**
 * The environment to start `program` with, on top of `base` (default: this process's). Values the
 * caller already set win; NODE_OPTIONS are joined (ours first, so the caller's flags override).
 */
export function programEnvironment(program: string, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const ours = PROGRAM_ENVIRONMENT[program] ?? {};
  const env: NodeJS.ProcessEnv = { ...ours, ...base };
  const options = [ours['NODE_OPTIONS'], base['NODE_OPTIONS']].filter((o) => o !== undefined && o !== '');
  if (options.length > 0) env['NODE_OPTIONS'] = options.join(' ');
  return env;
}
