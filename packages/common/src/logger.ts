/**
 * One pino root logger per daemon: JSON lines on stdout (journald keeps them). Pretty printing is
 * for development only: pipe through `pino-pretty`, or set SWIFTLET_LOG_PRETTY=1.
 */
import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export function createLogger(component: string, options: { level?: string } = {}): Logger {
  const opts: LoggerOptions = {
    level: options.level ?? process.env['SWIFTLET_LOG_LEVEL'] ?? 'info',
    base: { component, pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  if (process.env['SWIFTLET_LOG_PRETTY'] === '1') {
    return pino({ ...opts, transport: { target: 'pino-pretty', options: { colorize: true } } });
  }
  // Each line is written at once with a direct write(2). pino's default (asynchronous) writes each
  // line on libuv's thread pool: a thread handoff per request, which on this kind of machine costs
  // more than the write itself (in the cluster under small S3 GETs: each object server's context
  // switches fell from ~6,300 to ~2,800 per 8 s and its CPU per GET by 10-25 %; bench/RESULTS.md).
  // A line is never lost in a buffer when the process dies; a stdout that cannot keep up (a full
  // pipe) holds the process up instead of growing its memory.
  return pino(opts, pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything, for tests and tools that have no log to write. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
