import { describe, expect, it } from 'vitest';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@swiftlet/common';
import { ReplicationEngine, type JobContext, type ReplicationJob, type ReplicationStrategy } from './replication-engine.js';

interface TestJob extends ReplicationJob {
  behaviour: 'ok' | 'throw' | 'hang' | 'slow-progress';
}

function strategy(jobs: TestJob[], log: string[], opts: { ringChangesAfter?: number } = {}): ReplicationStrategy<TestJob> {
  let started = 0;
  const run = async (job: TestJob, ctx: JobContext): Promise<void> => {
    started++;
    log.push(`${job.handoff ? 'h' : 'p'}${job.partition}`);
    ctx.stats.inc('attempted');
    if (job.behaviour === 'throw') throw new Error(`boom ${job.partition}`);
    if (job.behaviour === 'hang') {
      await new Promise<void>((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error)));
    }
    if (job.behaviour === 'slow-progress') {
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 40));
        ctx.progress();
      }
    }
    ctx.stats.inc('success');
  };
  return {
    kind: 'test',
    collectJobs: async () => jobs,
    replicatePrimary: run,
    revertHandoff: async (job, ctx) => {
      await run(job, ctx);
      return job.partition % 2 === 0;
    },
    ringChanged: async () => opts.ringChangesAfter !== undefined && started >= opts.ringChangesAfter,
  };
}

const base = {
  concurrency: 1,
  handoffsFirst: false,
  intervalS: 30,
  lockupTimeoutS: 1800,
  statsIntervalS: 300,
  ringCheckIntervalS: 15,
  logger: silentLogger(),
};

const jobs = (n: number, b: TestJob['behaviour'] = 'ok', handoffEvery = 0): TestJob[] =>
  Array.from({ length: n }, (_, i) => ({ device: 'd1', partition: i, handoff: handoffEvery > 0 && i % handoffEvery === 0, behaviour: b }));

describe('ReplicationEngine', () => {
  it('runs every job once, shuffled, and counts', async () => {
    const log: string[] = [];
    const e = new ReplicationEngine(strategy(jobs(50), log), base);
    const s = await e.runPass();
    expect(s.done).toBe(50);
    expect(s.stats['attempted']).toBe(50);
    expect(s.stats['success']).toBe(50);
    expect(s.aborted).toBeUndefined();
    expect(new Set(log).size).toBe(50);
    expect(log).not.toEqual(jobs(50).map((j) => `p${j.partition}`)); // 1/50! chance of a false failure
  });

  it('puts handoffs first and skips primaries while handoffs remain (handoffs_first)', async () => {
    const log: string[] = [];
    const e = new ReplicationEngine(strategy(jobs(12, 'ok', 3), log), { ...base, handoffsFirst: true });
    const s = await e.runPass();
    // handoffs are partitions 0, 3, 6, 9; odd ones (3, 9) are not removed -> primaries skipped
    expect(log.slice(0, 4).every((l) => l.startsWith('h'))).toBe(true);
    expect(log).toHaveLength(4);
    expect(s.handoffsRemaining).toBe(2);
    expect(s.aborted).toBe('handoffs-remaining');
  });

  it('a failing job is logged and counted, the pass goes on', async () => {
    const log: string[] = [];
    const js = jobs(5);
    (js[2] as TestJob).behaviour = 'throw';
    const e = new ReplicationEngine(strategy(js, log), base);
    const s = await e.runPass();
    expect(s.done).toBe(5);
    expect(s.stats['failure']).toBe(1);
    expect(s.stats['success']).toBe(4);
  });

  it('aborts a job without progress after lockup_timeout, keeps one that progresses', async () => {
    const log: string[] = [];
    const js = jobs(3);
    (js[0] as TestJob).behaviour = 'hang';
    (js[1] as TestJob).behaviour = 'slow-progress'; // 240 ms in all, progress every 40 ms
    const e = new ReplicationEngine(strategy(js, log), { ...base, lockupTimeoutS: 0.15, concurrency: 3 });
    const t0 = Date.now();
    const s = await e.runPass();
    expect(Date.now() - t0).toBeLessThan(2000);
    expect(s.stats['lockup']).toBe(1);
    expect(s.stats['failure']).toBe(1);
    expect(s.stats['success']).toBe(2);
  });

  it('ends the pass when the ring changes', async () => {
    const log: string[] = [];
    const js = jobs(20, 'slow-progress');
    const e = new ReplicationEngine(strategy(js, log, { ringChangesAfter: 2 }), { ...base, ringCheckIntervalS: 0.05 });
    const s = await e.runPass();
    expect(s.aborted).toBe('ring-changed');
    expect(s.done).toBeLessThan(6);
  });

  it('stops on the stop signal and writes the recon cache at the end of a full pass', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'recon-'));
    try {
      const log: string[] = [];
      const e = new ReplicationEngine(strategy(jobs(3), log), { ...base, reconCachePath: dir });
      await e.runPass();
      const recon = JSON.parse(await readFile(join(dir, 'test.recon'), 'utf8')) as Record<string, unknown>;
      expect(recon['replication_stats']).toMatchObject({ attempted: 3, success: 3, failure: 0, failure_nodes: {} });
      expect(typeof recon['replication_last']).toBe('number');
      expect(typeof recon['replication_time']).toBe('number');

      const stop = new AbortController();
      const e2 = new ReplicationEngine(strategy(jobs(20, 'slow-progress'), []), { ...base, intervalS: 0 });
      setTimeout(() => stop.abort(), 100);
      const t0 = Date.now();
      await e2.runForever(stop.signal);
      expect(Date.now() - t0).toBeLessThan(2000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
