/**
 * `max_bytes_per_second`: one budget for the whole process (all concurrent pushes share it, as
 * rsync's --bwlimit would per transfer but summed), enforced by a Transform that holds each chunk
 * until the budget allows it. A virtual clock advances by size/rate per chunk; a chunk waits until
 * the clock reaches its start, so the long-run rate never exceeds the limit and nothing piles up
 * in memory (backpressure reaches the file reader).
 */
import { Transform, type TransformCallback } from 'node:stream';

export class BandwidthLimiter {
  private clockMs = 0;

  constructor(readonly bytesPerSecond: number) {}

  /** Milliseconds to wait before sending `bytes`. */
  reserve(bytes: number): number {
    const now = Date.now();
    const start = Math.max(now, this.clockMs);
    this.clockMs = start + (bytes * 1000) / this.bytesPerSecond;
    return start - now;
  }

  stream(signal?: AbortSignal): Transform {
    return new Transform({
      transform: (chunk: Buffer, _enc, cb: TransformCallback) => {
        const waitMs = this.reserve(chunk.length);
        if (waitMs <= 0) return cb(null, chunk);
        const t = setTimeout(() => cb(null, chunk), waitMs);
        signal?.addEventListener('abort', () => clearTimeout(t), { once: true });
      },
    });
  }
}
