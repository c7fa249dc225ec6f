import cluster from 'node:cluster';
import type { Logger } from './logger.js';

/**
 * Forks `count` worker processes (node:cluster: they share the listening sockets of the servers
 * they start) and starts another whenever one dies. Returns the stop: SIGTERM to every worker,
 * resolved once all are gone or after `graceMs`.
 */
export function superviseWorkers(count: number, logger: Logger, graceMs = 15_000): () => Promise<void> {
  for (let i = 0; i < count; i++) cluster.fork();
  let stopping = false;
  cluster.on('exit', (worker, code) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code }, 'worker died; starting another');
    cluster.fork();
  });
  return () => {
    stopping = true;
    return new Promise<void>((resolve) => {
      const alive = (): number => Object.keys(cluster.workers ?? {}).length;
      const t = setTimeout(resolve, graceMs);
      t.unref();
      cluster.on('exit', () => {
        if (alive() === 0) resolve();
      });
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGTERM');
      if (alive() === 0) resolve();
    });
  };
}
