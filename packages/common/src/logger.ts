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
  return pino(opts);
}

/** A logger that drops everything, for tests and tools that have no log to write. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
