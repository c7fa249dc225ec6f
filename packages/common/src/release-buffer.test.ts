import { describe, expect, it } from 'vitest';
import { canReleaseBuffers, releaseBuffer } from './release-buffer.js';

describe('releaseBuffer', () => {
  it('works on this Node (ES2024 transfer, or V8\'s flag for it on Node 20)', () => {
    expect(canReleaseBuffers()).toBe(true);
  });

  it('frees a Buffer that owns its whole ArrayBuffer: it reads as empty afterwards', () => {
    const buf = Buffer.allocUnsafe(64 * 1024).fill(7);
    releaseBuffer(buf);
    expect(buf.length).toBe(0);
    expect(buf.buffer.byteLength).toBe(0);
  });

  it('gives the memory back at once, without a garbage collection', () => {
    const before = process.memoryUsage().arrayBuffers;
    for (let i = 0; i < 256; i++) {
      const chunk = Buffer.allocUnsafe(1024 * 1024);
      chunk[0] = i;
      releaseBuffer(chunk);
    }
    // 256 MiB were allocated; without the release they would still count until a scavenge.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(4 * 1024 * 1024);
  });

  it('leaves alone what it could not free safely: a slice, a pooled small Buffer, a small one', () => {
    const big = Buffer.allocUnsafe(256 * 1024).fill(1);
    const slice = big.subarray(0, 128 * 1024);
    releaseBuffer(slice);
    expect([slice.length, big.length, big[0]]).toEqual([128 * 1024, 256 * 1024, 1]);
    const tail = big.subarray(1024);
    releaseBuffer(tail);
    expect(tail.length).toBe(255 * 1024);

    const pooled = Buffer.from('a string short enough for the shared pool');
    const neighbour = Buffer.from('another one, likely in the same pool');
    releaseBuffer(pooled);
    expect(pooled.toString()).toBe('a string short enough for the shared pool');
    expect(neighbour.toString()).toBe('another one, likely in the same pool');

    const small = Buffer.alloc(1000, 3);
    releaseBuffer(small);
    expect(small.length).toBe(1000);
  });
});
