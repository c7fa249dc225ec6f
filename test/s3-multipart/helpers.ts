/**
 * For the multipart tests: a seeded pseudo-random byte source with random access (AES-128-CTR of
 * zeros, so any range can be regenerated without keeping the data), and a look at the stored
 * segments on the cluster's devices (reading only each .data file's metadata trailer).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { open, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { Cluster } from '@swiftlet/cluster';

export class SeededBytes {
  private readonly key: Buffer;
  constructor(seed: string) {
    this.key = createHash('md5').update(seed).digest();
  }

  /** Bytes [start, start + length). */
  slice(start: number, length: number): Buffer {
    const block = Math.floor(start / 16);
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(block), 8);
    const c = createCipheriv('aes-128-ctr', this.key, iv);
    const skip = start - block * 16;
    return c.update(Buffer.alloc(length + skip)).subarray(skip);
  }

  /** The first `size` bytes as a stream of 1 MiB chunks (generated as they are read). */
  stream(size: number, chunk = 1024 * 1024): Readable {
    const self = this;
    return Readable.from(
      (function* () {
        for (let at = 0; at < size; at += chunk) yield self.slice(at, Math.min(chunk, size - at));
      })(),
    );
  }

  sha256(size: number): string {
    const h = createHash('sha256');
    for (let at = 0; at < size; at += 4 * 1024 * 1024) h.update(this.slice(at, Math.min(4 * 1024 * 1024, size - at)));
    return h.digest('hex');
  }
}

/** Names (`/account/container/object`) of every stored .data file whose name starts with `prefix`. */
export async function storedNames(cluster: Cluster, prefix: string): Promise<string[]> {
  return (await storedFiles(cluster, prefix)).map((f) => f.name);
}

/** Every stored .data file (path) whose name starts with `prefix`. */
export async function storedFiles(cluster: Cluster, prefix: string): Promise<{ name: string; file: string }[]> {
  const root = join(cluster.dir, 'srv');
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.data') && !f.includes('/tmp/'));
  const out: { name: string; file: string }[] = [];
  for (const f of files) {
    let fh;
    try {
      fh = await open(join(root, f), 'r');
    } catch {
      continue; // replaced meanwhile
    }
    try {
      const { size } = await fh.stat();
      if (size < 8) continue;
      const trailer = Buffer.alloc(8);
      await fh.read(trailer, 0, 8, size - 8);
      if (trailer.subarray(4).toString('ascii') !== 'SWM1') continue;
      const len = trailer.readUInt32BE(0);
      const json = Buffer.alloc(len);
      await fh.read(json, 0, len, size - 8 - len);
      const name = (JSON.parse(json.toString('utf8')) as { name?: string }).name ?? '';
      if (name.startsWith(prefix)) out.push({ name, file: join(root, f) });
    } finally {
      await fh.close();
    }
  }
  return out;
}

/** Polls `check` until it returns true or the deadline passes. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number, stepMs = 250): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
