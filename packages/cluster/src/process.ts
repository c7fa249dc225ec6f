/**
 * Starting and stopping Swiftlet's servers as real processes: used by `make run` and by every
 * integration and probe test, so that tests exercise exactly what operators run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SERVER_PID_HEADER } from '@swiftlet/common';
import { REPO_ROOT, programEntry } from '@swiftlet/common/programs';
import { programEnvironment, programNodeFlags } from './runtime-env.js';

export { REPO_ROOT };

/**
 * The built entry point of a program, e.g. binPath('object-server'): its
 * up-to-date bundle, else its compiled module (@swiftlet/common/programs).
 */
export function binPath(program: string): string {
  return programEntry(program);
}

/**
 * The first port of the kernel's ephemeral range (outgoing connections take their local ports from
 * it), or Linux's default when it cannot be read.
 */
function ephemeralRangeStart(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 1024) return low;
  } catch {
    // Not Linux, or /proc not mounted: the default below.
  }
  return 32768;
}

/** Binds `port` on `host` and closes it again: whether it was free a moment ago. */
function portFree(port: number, host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, host, () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

/** Ports this process has handed out: never twice (see freePort). */
const portsHandedOut = new Set<number>();

/**
 * A TCP port on 127.0.0.1 that was free a moment ago and that this process has not handed out
 * before, chosen at random below the ephemeral range: a port the kernel hands out (listen on 0)
 * can be taken by any outgoing connection before the server that was given it binds it, and with
 * many tests connecting at once one was (a storage server exited at start in CI). Falls back to
 * the kernel's choice when no port below is free.
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const high = ephemeralRangeStart() - 1;
  const low = Math.min(10_000, high - 1000);
  // A cluster asks for a dozen ports before any of its servers binds one; drawn at random, two of
  // them were sometimes the same (a storage server then died on EADDRINUSE at start, in CI).
  if (portsHandedOut.size > (high - low) / 2) portsHandedOut.clear();
  for (let attempt = 0; attempt < 50; attempt++) {
    const candidate = low + Math.floor(Math.random() * (high - low + 1));
    if (portsHandedOut.has(candidate)) continue;
    const port = await portFree(candidate, host);
    if (port !== undefined) {
      portsHandedOut.add(port);
      return port;
    }
  }
  const port = await portFree(0, host);
  if (port === undefined) throw new Error(`no free TCP port on ${host}`);
  return port;
}

/** Polls `check` until it returns a truthy value or the deadline passes (no blind sleeps). */
export async function waitFor<T>(
  check: () => Promise<T | undefined | false | null> | T | undefined | false | null,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string; fatal?: (err: unknown) => boolean } = {},
): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      if (opts.fatal?.(err)) throw err;
      lastErr = err;
    }
    if (Date.now() > deadline) {
      const why = lastErr instanceof Error ? `: ${lastErr.message}` : '';
      throw new Error(`timed out waiting for ${opts.what ?? 'condition'}${why}`);
    }
    await new Promise((r) => setTimeout(r, opts.intervalMs ?? 50));
  }
}

/** A server that died before its health check answered: says why, from the end of its log. */
class ExitedAtStart extends Error {
  constructor(name: string, status: number | string | null, logFile: string | undefined) {
    let tail = '';
    if (logFile !== undefined) {
      try {
        tail = readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-5).join('\n');
      } catch (err) {
        tail = `(its log ${logFile} could not be read: ${(err as Error).message})`;
      }
    }
    super(`${name} exited at start (${String(status)})${tail === '' ? '' : `; its log ends:\n${tail}`}`);
  }
}

export interface ServerProcess {
  readonly name: string;
  readonly child: ChildProcess;
  readonly pid: number;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop(graceMs?: number): Promise<void>;
  /** SIGKILL at once (a crash). */
  kill(): Promise<void>;
  /** SIGSTOP / SIGCONT: a node that hangs without closing its sockets. */
  pause(): void;
  resume(): void;
  readonly exited: Promise<number | null>;
}

export interface StartOptions {
  name: string;
  /** Path of the JS entry point (see binPath). */
  script: string;
  /** Program name (`object-server`, ...): starts it with its environment (runtime-env.ts). */
  program?: string;
  args?: string[];
  env?: NodeJS.ProcessEnv;
  /** Where stdout and stderr go; default: discarded. */
  logFile?: string;
  /** GET this URL (each of these URLs) until it answers 200 before returning. */
  healthUrl?: string | string[];
  startTimeoutMs?: number;
}

export async function startProcess(opts: StartOptions): Promise<ServerProcess> {
  // Node refuses --cpu-prof in NODE_OPTIONS; SWIFTLET_CPU_PROF_DIR profiles every process started
  // here (benchmarks: where the CPU of a whole cluster goes).
  const profDir = process.env['SWIFTLET_CPU_PROF_DIR'];
  const nodeArgs = opts.program ? [...programNodeFlags(opts.program)] : [];
  if (profDir) nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profDir}`, `--cpu-prof-name=${opts.name}.${Date.now()}.cpuprofile`);
  // SWIFTLET_NODE_ARGS: more node flags for every process, e.g. --trace-gc (also refused in NODE_OPTIONS).
  nodeArgs.push(...(process.env['SWIFTLET_NODE_ARGS'] ?? '').split(' ').filter((a) => a !== ''));
  // The child writes its log to the file itself (one open file description in append mode,
  // shared by stdout and stderr), as under systemd: relaying it through a pipe woke this process
  // and its thread pool for every line of every server (in a 13-process cluster under small S3
  // PUTs, 0.7 s of CPU and 8,900 context switches per 8 s; bench/RESULTS.md).
  const logFd = opts.logFile ? openSync(opts.logFile, 'a') : undefined;
  let child;
  try {
    child = spawn(process.execPath, [...nodeArgs, opts.script, ...(opts.args ?? [])], {
      env: { ...(opts.program ? programEnvironment(opts.program) : process.env), ...opts.env },
      stdio: ['ignore', logFd ?? 'ignore', logFd ?? 'ignore'],
    });
  } finally {
    if (logFd !== undefined) closeSync(logFd);
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  if (child.pid === undefined) throw new Error(`${opts.name}: could not start ${opts.script}`);
  const pid = child.pid;
  const gone = (): boolean => child.exitCode !== null || child.signalCode !== null;
  const handle: ServerProcess = {
    name: opts.name,
    child,
    pid,
    exited,
    async stop(graceMs = 5000) {
      if (gone()) return;
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
    async kill() {
      if (gone()) return;
      child.kill('SIGKILL');
      await exited;
    },
    pause() {
      child.kill('SIGSTOP');
    },
    resume() {
      child.kill('SIGCONT');
    },
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 60_000);
  for (const url of opts.healthUrl === undefined ? [] : [opts.healthUrl].flat()) {
    try {
      await waitFor(
        async () => {
          if (gone()) throw new ExitedAtStart(opts.name, child.exitCode ?? child.signalCode, opts.logFile);
          const res = await fetch(url).catch(() => undefined);
          // Another server on the same port (handed to two launchers) is not ours.
          const who = res?.headers.get(SERVER_PID_HEADER);
          return res?.status === 200 && (who === null || who === undefined || who === String(pid));
        },
        { timeoutMs: Math.max(0, deadline - Date.now()), what: `${opts.name} at ${url}`, fatal: (err) => err instanceof ExitedAtStart },
      );
    } catch (err) {
      await handle.kill();
      throw err;
    }
  }
  return handle;
}

/** Writes an INI file from sections of key/value pairs. */
export function iniText(sections: Record<string, Record<string, string | number | boolean>>): string {
  return Object.entries(sections)
    .map(([name, kv]) => `[${name}]\n${Object.entries(kv).map(([k, v]) => `${k} = ${String(v)}`).join('\n')}\n`)
    .join('\n');
}
