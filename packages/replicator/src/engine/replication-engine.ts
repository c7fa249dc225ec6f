/**
 * The replication pass engine, shared by the object replicator and the container/account
 * replicators: a strategy says which jobs exist on this node and how to replicate one; the engine
 * runs a pass over them the way Swift's replicators do, and adds what Swift lacks or lost:
 *
 * - jobs shuffled (so that nodes do not all hit the same peer in the same order), handoff jobs
 *   first when `handoffsFirst` (and then primaries are skipped while handoffs remain, Swift's
 *   "emergency mode");
 * - `concurrency` jobs at once (p-limit);
 * - a lockup detector per job: a job that reports no progress for `lockupTimeoutS` is aborted
 *   through its AbortSignal (which ends its sockets and streams) and counted as a failure, so one
 *   hung peer or disk cannot hold the pass (Swift removed its detector in 2.18 and relies on
 *   killing rsync; here every I/O takes the job's signal);
 * - the ring checked every `ringCheckIntervalS`: when it changed, no further job starts and the
 *   pass ends, so the next pass is planned on the new ring;
 * - one failing job never stops the pass: errors are caught, logged with the job, and counted;
 * - a progress line every `statsIntervalS` and a summary at the end (pino), the same figures in the
 *   recon cache (`<recon_cache_path>/<kind>.recon`).
 */
import { setMaxListeners } from 'node:events';
import pLimit from 'p-limit';
import type { Logger } from '@swiftlet/common';
import { ReplicationStats, type ReplicationStatsJSON } from './replication-stats.js';
import { dumpReconCache, reconCacheFile } from './recon-cache.js';

/** The minimum a job must say; strategies extend it (policy, ring nodes, paths ...). */
export interface ReplicationJob {
  readonly device: string;
  readonly partition: number;
  /** The local device is not a primary of the partition: push everything, then remove it. */
  readonly handoff: boolean;
}

/** Narrow a pass to some devices, partitions or policies (`--devices`, `--partitions`, `--policies`). */
export interface PassOverrides {
  devices?: readonly string[];
  partitions?: readonly number[];
  policies?: readonly number[];
}

export interface CollectContext {
  readonly stats: ReplicationStats;
  readonly logger: Logger;
  readonly signal: AbortSignal;
  readonly overrides: PassOverrides;
}

export interface JobContext {
  /** Aborted on lockup, on shutdown; pass it to every request and stream of the job. */
  readonly signal: AbortSignal;
  readonly stats: ReplicationStats;
  /** Child logger carrying the job's device and partition. */
  readonly logger: Logger;
  /** Tell the lockup detector that the job is alive (a peer answered, bytes moved). */
  progress(): void;
}

export interface ReplicationStrategy<J extends ReplicationJob> {
  /** `object`, `container` or `account`: log component and recon file name (`<kind>.recon`). */
  readonly kind: string;
  /** Counters reported even when zero; defaults to the object replicator's names. */
  readonly statNames?: readonly string[];
  /** Every job of one pass on this node (all local devices, all policies), unordered. */
  collectJobs(ctx: CollectContext): Promise<J[]>;
  /** A partition that belongs here: bring its peers up to date. */
  replicatePrimary(job: J, ctx: JobContext): Promise<void>;
  /** A partition that does not belong here: push it to its primaries; true if it was removed. */
  revertHandoff(job: J, ctx: JobContext): Promise<boolean>;
  /** True when a ring file changed since `collectJobs` read it. */
  ringChanged(): Promise<boolean>;
  /** The pass's jobs in the order they will be started (e.g. to fetch ahead what they need). */
  jobsOrdered?(jobs: readonly J[], signal: AbortSignal, logger: Logger): void;
  /** Checked right before a job starts (e.g. the device is still mounted); false skips it. */
  jobStillValid?(job: J, ctx: JobContext): Promise<boolean>;
  /**
   * True when what was fetched ahead already shows the job has nothing to do (its stats are
   * counted here): the job is then done without being run. Must not block.
   */
  alreadyInSync?(job: J, stats: ReplicationStats): boolean;
  /** Fields for log lines about a job (defaults to device and partition). */
  describeJob?(job: J): Record<string, unknown>;
  /** Extra recon keys to write at the end of a pass. */
  reconEntries?(summary: PassSummary): Record<string, unknown>;
}

export interface EngineOptions {
  concurrency: number;
  handoffsFirst: boolean;
  /** Seconds between the start of two passes (run forever); a longer pass starts the next at once. */
  intervalS: number;
  lockupTimeoutS: number;
  statsIntervalS: number;
  ringCheckIntervalS: number;
  /** Folder of `<kind>.recon`; undefined writes no recon. */
  reconCachePath?: string;
  logger: Logger;
  /** Shuffle function, replaceable for deterministic tests. */
  shuffle?: <T>(items: T[]) => T[];
}

export type PassAbortReason = 'ring-changed' | 'stopped' | 'handoffs-remaining' | 'collect-failed';

export interface PassSummary {
  kind: string;
  /** Epoch seconds. */
  startedAt: number;
  durationS: number;
  jobs: number;
  done: number;
  handoffsRemaining: number;
  aborted?: PassAbortReason;
  overridden: boolean;
  stats: ReplicationStatsJSON;
}

export interface PassProgress {
  startedAt: number;
  jobs: number;
  done: number;
  stats: ReplicationStats;
}

export class LockupError extends Error {
  constructor(seconds: number) {
    super(`no progress for ${seconds} s (lockup_timeout): job aborted`);
    this.name = 'LockupError';
  }
}

export class PassStoppedError extends Error {
  constructor() {
    super('replication stopped');
    this.name = 'PassStoppedError';
  }
}

/** The reason a finished job's signal is aborted with (one instance: its stack says nothing). */
const JOB_ENDED = new PassStoppedError();

export function fisherYates<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}

function median(sorted: number[]): number {
  if (sorted.length === 0) return 0;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

export class ReplicationEngine<J extends ReplicationJob> {
  private current: PassProgress | undefined;
  private partitionTimesS: number[] = [];

  constructor(
    readonly strategy: ReplicationStrategy<J>,
    readonly opts: EngineOptions,
  ) {
    if (!(opts.concurrency >= 1)) throw new RangeError(`concurrency must be >= 1 (was ${opts.concurrency})`);
  }

  /** The pass under way, if any (for a status endpoint or a test). */
  get progress(): PassProgress | undefined {
    return this.current;
  }

  /** One pass over every job. Never throws for a job's failure; resolves with the summary. */
  async runPass(overrides: PassOverrides = {}, stopSignal?: AbortSignal): Promise<PassSummary> {
    const { strategy, opts } = this;
    const logger = opts.logger;
    const stats = new ReplicationStats(strategy.statNames);
    const startMs = Date.now();
    const overridden = Boolean(overrides.devices?.length || overrides.partitions?.length || overrides.policies?.length);
    const passAbort = new AbortController();
    // Every running job (up to `concurrency`) and batched request listens on it.
    setMaxListeners(0, passAbort.signal);
    const onStop = (): void => passAbort.abort(new PassStoppedError());
    if (stopSignal?.aborted) onStop();
    stopSignal?.addEventListener('abort', onStop, { once: true });
    let aborted: PassAbortReason | undefined;
    let jobs: J[] = [];
    let done = 0;
    let handoffsRemaining = 0;
    this.partitionTimesS = [];

    try {
      jobs = await strategy.collectJobs({ stats, logger, signal: passAbort.signal, overrides });
    } catch (err) {
      logger.error({ err }, `${strategy.kind} replication: could not collect jobs`);
      aborted = 'collect-failed';
    }
    const progress: PassProgress = { startedAt: startMs / 1000, jobs: jobs.length, done: 0, stats };
    this.current = progress;

    const shuffle = opts.shuffle ?? fisherYates;
    jobs = shuffle([...jobs]);
    const handoffJobs = jobs.filter((j) => j.handoff);
    const primaryJobs = jobs.filter((j) => !j.handoff);
    strategy.jobsOrdered?.(opts.handoffsFirst ? [...handoffJobs, ...primaryJobs] : jobs, passAbort.signal, logger);

    let ringCheckBusy = false;
    const ringTimer = setInterval(() => {
      if (ringCheckBusy || aborted) return;
      ringCheckBusy = true;
      strategy
        .ringChanged()
        .then((changed) => {
          if (changed && !aborted) {
            aborted = 'ring-changed';
            logger.warn(`${strategy.kind} replication: ring changed during the pass; ending it early`);
          }
        })
        .catch((err: unknown) => logger.error({ err }, 'ring check failed'))
        .finally(() => {
          ringCheckBusy = false;
        });
    }, Math.max(1, opts.ringCheckIntervalS * 1000));
    const statsTimer = setInterval(() => {
      this.logProgress(progress);
      if (opts.reconCachePath && !overridden) {
        dumpReconCache(reconCacheFile(opts.reconCachePath, strategy.kind), {
          replication_progress: { start: progress.startedAt, jobs: progress.jobs, done: progress.done, stats: stats.toJSON() },
        }).catch((err: unknown) => logger.error({ err }, 'could not write the recon cache'));
      }
    }, Math.max(1, opts.statsIntervalS * 1000));
    // A pass over a quiet cluster must not be kept alive by these timers at shutdown.
    ringTimer.unref();
    statsTimer.unref();

    const limit = pLimit(opts.concurrency);
    const runOne = async (job: J): Promise<void> => {
      if (passAbort.signal.aborted) aborted ??= 'stopped';
      if (aborted) return;
      if (!job.handoff && strategy.alreadyInSync?.(job, stats)) {
        done++;
        progress.done = done;
        this.partitionTimesS.push(0);
        return;
      }
      const removed = await this.runJob(job, stats, passAbort.signal);
      if (job.handoff && !removed) handoffsRemaining++;
      done++;
      progress.done = done;
    };

    try {
      if (!aborted) {
        if (opts.handoffsFirst) {
          await Promise.all(handoffJobs.map((j) => limit(runOne, j)));
          if (!aborted && handoffsRemaining > 0) {
            logger.warn(
              { handoffsRemaining },
              `${strategy.kind} replication: handoffs_first: handoff partitions remain; skipping primary partitions this pass`,
            );
            aborted = 'handoffs-remaining';
          }
          await Promise.all(primaryJobs.map((j) => limit(runOne, j)));
        } else {
          await Promise.all(jobs.map((j) => limit(runOne, j)));
        }
      }
    } finally {
      clearInterval(ringTimer);
      clearInterval(statsTimer);
      stopSignal?.removeEventListener('abort', onStop);
      this.current = undefined;
    }
    if (passAbort.signal.aborted && !aborted) aborted = 'stopped';

    const durationS = (Date.now() - startMs) / 1000;
    const summary: PassSummary = {
      kind: strategy.kind,
      startedAt: startMs / 1000,
      durationS,
      jobs: jobs.length,
      done,
      handoffsRemaining,
      overridden,
      stats: stats.toJSON(),
      ...(aborted ? { aborted } : {}),
    };
    this.logProgress(progress);
    const times = [...this.partitionTimesS].sort((a, b) => a - b);
    logger.info(
      {
        pass: 'end',
        durationS: round2(durationS),
        jobs: jobs.length,
        done,
        handoffsRemaining,
        aborted,
        stats: summary.stats,
        partitionTimesS: times.length
          ? { max: round2(times.at(-1) as number), min: round2(times[0] as number), med: round2(median(times)) }
          : undefined,
      },
      `${capitalize(strategy.kind)} replication complete${overridden ? ' (overridden)' : ''}${aborted ? ` (ended early: ${aborted})` : ''}. (${round2(durationS / 60)} minutes)`,
    );
    // A pass cut short by shutdown says nothing about the cluster: keep the last full figures.
    if (opts.reconCachePath && !overridden && aborted !== 'stopped') {
      const endS = Date.now() / 1000;
      const minutes = durationS / 60;
      try {
        await dumpReconCache(reconCacheFile(opts.reconCachePath, strategy.kind), {
          replication_stats: { ...summary.stats, start: summary.startedAt },
          replication_time: minutes,
          replication_last: endS,
          [`${strategy.kind}_replication_time`]: minutes,
          [`${strategy.kind}_replication_last`]: endS,
          replication_progress: undefined,
          ...(strategy.reconEntries?.(summary) ?? {}),
        });
      } catch (err) {
        logger.error({ err }, 'could not write the recon cache');
      }
    } else if (opts.reconCachePath && !overridden) {
      await dumpReconCache(reconCacheFile(opts.reconCachePath, strategy.kind), { replication_progress: undefined }).catch(
        (err: unknown) => logger.error({ err }, 'could not write the recon cache'),
      );
    }
    return summary;
  }

  /** Passes until `signal` aborts, starting one every `intervalS` at most. */
  async runForever(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const begin = Date.now();
      try {
        await this.runPass({}, signal);
      } catch (err) {
        // runPass catches job errors itself; this is a bug or a resource problem: log, go on.
        this.opts.logger.error({ err }, `${this.strategy.kind} replication pass failed`);
      }
      const waitMs = this.opts.intervalS * 1000 - (Date.now() - begin);
      if (waitMs > 0 && !signal.aborted) await sleep(waitMs, signal);
    }
  }

  private async runJob(job: J, stats: ReplicationStats, passSignal: AbortSignal): Promise<boolean> {
    const { strategy, opts } = this;
    // Created on first use: most jobs of an in-sync pass log nothing.
    let jobLogger: Logger | undefined;
    const jobLog = (): Logger => (jobLogger ??= opts.logger.child(strategy.describeJob?.(job) ?? { device: job.device, partition: job.partition }));
    // The job's own controller, aborted on lockup, at its end, and when the pass stops (a listener
    // rather than AbortSignal.any, which costs weak references and a registry per job).
    const lockup = new AbortController();
    const signal = lockup.signal;
    const onPassAbort = (): void => lockup.abort(passSignal.reason);
    if (passSignal.aborted) onPassAbort();
    else passSignal.addEventListener('abort', onPassAbort, { once: true });
    const lockupMs = opts.lockupTimeoutS * 1000;
    let last = Date.now();
    const watchdog = setInterval(
      () => {
        if (Date.now() - last >= lockupMs) lockup.abort(new LockupError(opts.lockupTimeoutS));
      },
      Math.max(10, Math.min(1000, lockupMs / 4)),
    );
    watchdog.unref();
    const ctx: JobContext = {
      signal,
      stats,
      get logger() {
        return jobLog();
      },
      progress: () => {
        last = Date.now();
      },
    };
    const aborted = new Promise<never>((_, reject) => {
      const onAbort = (): void => reject(signal.reason as Error);
      if (signal.aborted) onAbort();
      else signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    const begin = Date.now();
    try {
      if (strategy.jobStillValid && !(await strategy.jobStillValid(job, ctx))) return false;
      if (job.handoff) return await Promise.race([strategy.revertHandoff(job, ctx), aborted]);
      await Promise.race([strategy.replicatePrimary(job, ctx), aborted]);
      return false;
    } catch (err) {
      if (err instanceof PassStoppedError || (passSignal.aborted && !(err instanceof LockupError))) {
        jobLog().info('job interrupted: replication stopping');
        return false;
      }
      stats.inc('failure');
      if (err instanceof LockupError) {
        stats.inc('lockup');
        jobLog().error({ err: err.message }, `${strategy.kind} replication job locked up`);
      } else {
        jobLog().error({ err }, `${strategy.kind} replication job failed`);
      }
      return false;
    } finally {
      clearInterval(watchdog);
      passSignal.removeEventListener('abort', onPassAbort);
      if (!lockup.signal.aborted) lockup.abort(JOB_ENDED); // ends anything the job left running
      this.partitionTimesS.push((Date.now() - begin) / 1000);
    }
  }

  private logProgress(p: PassProgress): void {
    const elapsedS = (Date.now() - p.startedAt * 1000) / 1000;
    const rate = elapsedS > 0 ? p.done / elapsedS : 0;
    const remaining = p.jobs - p.done;
    const etaS = rate > 0 ? remaining / rate : undefined;
    const s = p.stats;
    const suffixCount = s.get('suffix_count');
    const pct = (n: number): number => (suffixCount ? round2((n * 100) / suffixCount) : 0);
    this.opts.logger.info(
      {
        pass: 'progress',
        done: p.done,
        total: p.jobs,
        elapsedS: round2(elapsedS),
        ratePerS: round2(rate),
        etaS: etaS === undefined ? undefined : round2(etaS),
        success: s.get('success'),
        failure: s.get('failure'),
        suffixCount,
        suffixHash: s.get('suffix_hash'),
        suffixSync: s.get('suffix_sync'),
      },
      `${p.done}/${p.jobs} (${p.jobs ? round2((p.done * 100) / p.jobs) : 100}%) partitions replicated in ${round2(elapsedS)}s ` +
        `(${round2(rate)}/sec, ${etaS === undefined ? '?' : round2(etaS)}s remaining); ` +
        `${s.get('success')} successes, ${s.get('failure')} failures; ` +
        `${suffixCount} suffixes checked - ${pct(s.get('suffix_hash'))}% hashed, ${pct(s.get('suffix_sync'))}% synced`,
    );
  }
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
