import { Readable, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { canReleaseBuffers, pipeReleasing, releaseBuffer } from './release-buffer.js';

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

describe('pipeReleasing', () => {
  it('delivers every byte in order with backpressure, and frees each chunk only after its write completed', async () => {
    const chunks = Array.from({ length: 40 }, (_, i) => Buffer.alloc(64 * 1024, i));
    const received: Buffer[] = [];
    let lengthsAtWrite = 0;
    const sink = new Writable({
      highWaterMark: 128 * 1024,
      write(chunk: Buffer, _enc, cb) {
        // Still whole while the destination works on it (a socket's write in flight).
        if (chunk.length === 64 * 1024) lengthsAtWrite++;
        received.push(Buffer.from(chunk));
        setImmediate(cb);
      },
    });
    const done = new Promise((resolve) => sink.once('finish', resolve));
    pipeReleasing(Readable.from(chunks, { objectMode: false }), sink);
    await done;
    expect(lengthsAtWrite).toBe(40);
    expect(Buffer.concat(received).equals(Buffer.concat(chunks.map((_, i) => Buffer.alloc(64 * 1024, i))))).toBe(true);
    expect(chunks.every((c) => c.length === 0)).toBe(true);
  });

  it('leaves a chunk whose write failed to the garbage collector', async () => {
    const chunk = Buffer.alloc(64 * 1024, 1);
    const sink = new Writable({
      write(_c, _e, cb) {
        cb(new Error('socket closed'));
      },
    });
    const failed = new Promise((resolve) => sink.once('error', resolve));
    pipeReleasing(Readable.from([chunk]), sink);
    await failed;
    await new Promise((resolve) => setImmediate(resolve));
    expect(chunk.length).toBe(64 * 1024);
  });
});
