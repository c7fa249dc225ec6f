/**
 * The environment each Swiftlet program runs with. The systemd units in etc/systemd carry the
 * same `Environment=` lines (a test keeps the two equal), so the all-in-one cluster and the
 * benchmarks run what operators run.
 */

/**
 * glibc returns the top of its heap to the kernel whenever more than 128 KiB is free there. A
 * server streaming a large body frees its socket buffers by the megabyte at every garbage
 * collection, so the next buffers page-fault fresh memory in again: through the proxy, a 1 GiB
 * GET cost 6.7 s of CPU with the default and 1.8 s with a 32 MiB threshold (bench/RESULTS.md).
 */
const MALLOC_TRIM_THRESHOLD = String(32 * 1024 * 1024);

/** Program name (as in `swiftlet-<program>`) -> its environment. */
export const PROGRAM_ENVIRONMENT: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'object-server': {
    // fsync and file I/O run on libuv's thread pool (default 4 threads): room for many
    // concurrent durable writes.
    UV_THREADPOOL_SIZE: '32',
    // A 4 MiB young generation (V8's default is 16 MiB per semi-space): request garbage is
    // collected sooner, which keeps the resident set near 100 MiB under 64 concurrent requests.
    NODE_OPTIONS: '--max-semi-space-size=4',
    MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD,
  },
  'proxy-server': {
    // A 1 MiB young generation: body chunks in flight to three object servers are collected by
    // scavenges while young. With 16 MiB they lived through too few scavenges to matter and every
    // 64 MiB of them started a full mark-compact (75-90 per GiB uploaded): 1 GiB PUT 3.3-4.0 s
    // of proxy CPU against 2.2-2.3 s.
    NODE_OPTIONS: '--max-semi-space-size=1',
    MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD,
  },
  'container-server': { MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD },
  'account-server': { MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD },
  'object-replicator': { MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD },
  'object-updater': { MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD },
  'container-updater': { MALLOC_TRIM_THRESHOLD_: MALLOC_TRIM_THRESHOLD },
};

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
