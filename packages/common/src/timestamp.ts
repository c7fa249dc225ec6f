/**
 * Swift's Timestamp: seconds since the epoch at 10 µs precision (five decimals), plus an optional
 * offset that orders several writes made at the same instant (e.g. a .meta after a .data).
 *
 * Forms, as Swift writes them:
 *   normal:   `1700000000.00000`              (%016.05f, sorts lexically)
 *   internal: `1700000000.00000_000000000000000a`  (normal + `_%016x` offset; no suffix if offset 0)
 * Order: by time, then by offset (so `t` < `t_0000000000000001`).
 */
import { BadRequestError } from './errors.js';

const TICKS_PER_SECOND = 100_000;
/** Swift refuses timestamps of 10^10 s and above (they would not fit %016.05f). */
const MAX_TICKS = 10_000_000_000 * TICKS_PER_SECOND;
const MAX_OFFSET = (1n << 64n) - 1n;
const TIMESTAMP_RE = /^(\d+)(?:\.(\d*))?(?:_([0-9a-fA-F]{1,16}))?$/;

export class Timestamp {
  /** Whole 10 µs ticks since the epoch; exact in a double up to MAX_TICKS (< 2^53). */
  readonly ticks: number;
  readonly offset: bigint;

  constructor(ticks: number, offset: bigint = 0n) {
    if (!Number.isInteger(ticks) || ticks < 0 || ticks >= MAX_TICKS) {
      throw new RangeError(`timestamp out of range: ${ticks / TICKS_PER_SECOND}`);
    }
    if (offset < 0n || offset > MAX_OFFSET) throw new RangeError(`timestamp offset out of range: ${offset}`);
    this.ticks = ticks;
    this.offset = offset;
  }

  /** The current time; `Date.now()` is only ms-precise, `hrtime` adds the sub-ms digits. */
  static now(): Timestamp {
    const ms = Date.now();
    const subMsTicks = Number(process.hrtime.bigint() % 1_000_000n) / 10_000; // 0..99 ticks of 10 µs
    return new Timestamp(ms * 100 + Math.floor(subMsTicks));
  }

  static fromSeconds(seconds: number, offset: bigint = 0n): Timestamp {
    return new Timestamp(Math.round(seconds * TICKS_PER_SECOND), offset);
  }

  /**
   * Parses any form Swift accepts in `X-Timestamp` or a file name: integer seconds, decimals (more
   * than five are rounded as Swift rounds them), with or without `_offset`.
   * Throws BadRequestError naming the value.
   */
  static parse(value: string): Timestamp {
    const m = TIMESTAMP_RE.exec(value.trim());
    if (!m) throw new BadRequestError(`invalid timestamp "${value}"`);
    const whole = m[1] as string;
    const frac = m[2] ?? '';
    // Round the fraction to five digits exactly as Python's round-half-even on the decimal string
    // would be too subtle; Swift itself uses round(float, 5). Half-up on the digit string agrees for
    // every value Swift writes (they never have more than five decimals).
    let ticks = Number(whole) * TICKS_PER_SECOND + Number((frac + '00000').slice(0, 5));
    if (frac.length > 5 && Number(frac[5]) >= 5) ticks += 1;
    if (!Number.isSafeInteger(ticks) || ticks >= MAX_TICKS) throw new BadRequestError(`invalid timestamp "${value}"`);
    const offset = m[3] !== undefined ? BigInt(`0x${m[3]}`) : 0n;
    return new Timestamp(ticks, offset);
  }

  /** Like parse, but returns undefined instead of throwing. */
  static tryParse(value: string | undefined | null): Timestamp | undefined {
    if (value === undefined || value === null) return undefined;
    try {
      return Timestamp.parse(value);
    } catch {
      return undefined;
    }
  }

  get seconds(): number {
    return this.ticks / TICKS_PER_SECOND;
  }

  /** `1700000000.00000`: the form without offset. */
  get normal(): string {
    const whole = Math.floor(this.ticks / TICKS_PER_SECOND);
    const frac = this.ticks % TICKS_PER_SECOND;
    return `${String(whole).padStart(10, '0')}.${String(frac).padStart(5, '0')}`;
  }

  /** The form used in file names and X-Timestamp between servers: normal plus `_offset` if any. */
  get internal(): string {
    return this.offset === 0n ? this.normal : `${this.normal}_${this.offset.toString(16).padStart(16, '0')}`;
  }

  toString(): string {
    return this.internal;
  }

  /** HTTP date (RFC 7231) of the time part, for Last-Modified; Swift rounds up to the second. */
  toHttpDate(): string {
    return new Date(Math.ceil(this.ticks / TICKS_PER_SECOND) * 1000).toUTCString();
  }

  compare(other: Timestamp): number {
    if (this.ticks !== other.ticks) return this.ticks < other.ticks ? -1 : 1;
    if (this.offset !== other.offset) return this.offset < other.offset ? -1 : 1;
    return 0;
  }

  equals(other: Timestamp): boolean {
    return this.compare(other) === 0;
  }

  isNewerThan(other: Timestamp): boolean {
    return this.compare(other) > 0;
  }

  /** The same time with the offset increased by `by` (Swift's `Timestamp(ts, offset=...)`). */
  withOffset(offset: bigint): Timestamp {
    return new Timestamp(this.ticks, offset);
  }

  static compare(a: Timestamp, b: Timestamp): number {
    return a.compare(b);
  }

  static max(a: Timestamp, b: Timestamp): Timestamp {
    return a.compare(b) >= 0 ? a : b;
  }
}
