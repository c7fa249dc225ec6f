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
  return pino(opts, new LoopTurnLines(pino.destination({ dest: 1, sync: true })));
}

/** Lines held past this many characters are written at once, whatever the loop is doing. */
const MAX_HELD_CHARS = 64 * 1024;

/**
 * Log lines are written with one direct write(2) per turn of the event loop, for every line
 * logged in that turn (a setImmediate), instead of one write per line.
 *
 * Why: under load a server logs a request line for each of several requests that one turn of the
 * loop finishes, and each write(2) cost 20-40 µs on the machines measured (a tenth of a small GET's
 * whole cost in an object server; bench/RESULTS.md). pino's default asynchronous destination
 * would batch too, but on libuv's thread pool: a thread handoff per write, which costs more than
 * the write. A line waits at most until the loop's current turn ends: a test or an operator reading
 * the log after a request sees its line; on a crash the exit handler writes what is held (only a
 * SIGKILL loses the current turn's lines). A stdout that cannot keep up (a full pipe) holds the
 * process up instead of growing its memory (SonicBoom's synchronous writes).
 */
export class LoopTurnLines {
  private held: string[] = [];
  private heldChars = 0;
  private scheduled = false;

  /** Every instance, written out by one exit handler. */
  private static readonly all = new Set<LoopTurnLines>();
  /** Once the process exits no turn ends: lines are written as they come. */
  private static exiting = false;

  constructor(private readonly out: { write(data: string): boolean; flushSync(): void }) {
    if (LoopTurnLines.all.size === 0) {
      process.on('exit', () => {
        LoopTurnLines.exiting = true;
        for (const lines of LoopTurnLines.all) {
          try {
            lines.flushSync();
          } catch {
            // A closed stdout: nothing more can be written anywhere; the others are still tried.
          }
        }
      });
    }
    LoopTurnLines.all.add(this);
  }

  write(line: string): boolean {
    this.held.push(line);
    this.heldChars += line.length;
    if (this.heldChars >= MAX_HELD_CHARS || LoopTurnLines.exiting) this.writeHeld();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.writeHeld();
      });
    }
    return true;
  }

  /** pino's logger.flush(cb). */
  flush(cb?: (err?: Error) => void): void {
    try {
      this.flushSync();
    } catch (err) {
      if (cb) cb(err as Error);
      else throw err;
      return;
    }
    cb?.();
  }

  flushSync(): void {
    this.writeHeld();
    this.out.flushSync();
  }

  private writeHeld(): void {
    if (this.held.length === 0) return;
    const text = this.held.length === 1 ? (this.held[0] as string) : this.held.join('');
    this.held = [];
    this.heldChars = 0;
    this.out.write(text);
  }
}

/** A logger that drops everything, for tests and tools that have no log to write. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
