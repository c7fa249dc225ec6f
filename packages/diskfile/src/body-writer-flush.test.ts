/**
 * A background flush that fails must fail the write: Linux reports a writeback error once per open
 * file, so the final fdatasync would not see it again. The disk error is injected into io.ts's
 * fdatasync (a real disk error cannot be made on demand); the file and its writes are real.
 */
import { closeSync, openSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, expect, it, vi } from 'vitest';

const failures = vi.hoisted(() => ({ left: 0, calls: 0 }));
vi.mock('./io.js', async (importOriginal) => {
  const io = await importOriginal<typeof import('./io.js')>();
  return {
    ...io,
    fdatasyncFd: async (fd: number): Promise<void> => {
      failures.calls++;
      if (failures.left > 0) {
        failures.left--;
        throw Object.assign(new Error('EIO: i/o error, fdatasync'), { code: 'EIO' });
      }
      return io.fdatasyncFd(fd);
    },
  };
});

const { BodyWriter, FLUSH_EVERY_BYTES, WRITE_BATCH_BYTES } = await import('./body-writer.js');

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'body-writer-flush-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

it('a failed background flush fails finish, even when the final fdatasync succeeds', async () => {
  failures.left = 1;
  failures.calls = 0;
  const fd = openSync(join(dir, 'body'), 'w');
  try {
    const writer = new BodyWriter(fd);
    const chunk = Buffer.alloc(64 * 1024, 1);
    for (let n = 0; n < FLUSH_EVERY_BYTES + 2 * WRITE_BATCH_BYTES; n += chunk.length) await writer.add(chunk);
    await expect(writer.finish(Buffer.from('trailer'))).rejects.toMatchObject({ code: 'EIO' });
    expect(failures.calls).toBe(1);
  } finally {
    closeSync(fd);
  }
});
