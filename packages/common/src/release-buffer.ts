/**
 * Frees a body chunk's memory as soon as its last use is over, instead of at the next garbage
 * collection.
 *
 * Why: V8 frees a young ArrayBuffer's memory only at a scavenge, and starts one for ArrayBuffers
 * alone after ~28 MiB of them. A body streaming in at 400 MB/s (Node's HTTP parser copies each
 * piece of it into a fresh Buffer) keeps that much dead memory in the malloc heap between
 * scavenges, and the heap keeps its high-water mark: a 1 GiB PUT took an idle object server from
 * 69 to 111 MiB of RSS, against #3's 100 MiB. Detaching the ArrayBuffer
 * (`ArrayBuffer.prototype.transfer(0)`, ES2024) frees its backing store at once and takes it off
 * V8's count, so the scavenges it would have started do not happen either (bench/RESULTS.md,
 * object server).
 *
 * Node 22 has `transfer`; Node 20's V8 has it behind `--harmony-rab-gsab-transfer`, which applies
 * to contexts created after it is set, so it is taken from a fresh context (a builtin works on
 * ArrayBuffers of any context). Where neither works, releasing does nothing and the memory waits
 * for the collector as before.
 */
import type { Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

type Transfer = (this: ArrayBuffer, newLength?: number) => ArrayBuffer;

/** Smaller Buffers may be slices of Node's shared 8 KiB pool; they are never released. */
const MIN_RELEASED_BYTES = 4096;

let transfer: Transfer | null | undefined;

function findTransfer(): Transfer | null {
  const own = (ArrayBuffer.prototype as { transfer?: unknown }).transfer;
  if (typeof own === 'function') return own as Transfer;
  try {
    setFlagsFromString('--harmony-rab-gsab-transfer');
    const fromFreshContext: unknown = runInNewContext('ArrayBuffer.prototype.transfer');
    return typeof fromFreshContext === 'function' ? (fromFreshContext as Transfer) : null;
  } catch {
    // A V8 without the flag: nothing is released, which costs memory only.
    return null;
  }
}

/** Whether releaseBuffer frees memory in this process (for tests and the servers' start-up warning). */
export function canReleaseBuffers(): boolean {
  transfer ??= findTransfer();
  return transfer !== null;
}

/**
 * Frees `buf`'s memory now if `buf` is the only view of its whole ArrayBuffer; afterwards `buf`
 * reads as empty. Call it only for a chunk nothing else holds: the caller's last use is over and
 * no write, hash or queue still refers to it (a slice of it would go empty too).
 */
export function releaseBuffer(buf: Buffer): void {
  if (buf.byteLength < MIN_RELEASED_BYTES || buf.byteOffset !== 0 || buf.buffer.byteLength !== buf.byteLength) return;
  transfer ??= findTransfer();
  transfer?.call(buf.buffer as ArrayBuffer, 0);
}

/**
 * `source.pipe(dest)` for a response body, except that each chunk is released once `dest` has
 * taken it (its write callback, without error: the bytes are in the kernel's socket buffer). Only
 * the chunks that own their whole ArrayBuffer are freed (releaseBuffer), so the source must not
 * keep or share the ones it emits. Backpressure and the end are as pipe's; stopping on an error
 * or on a closed destination is the caller's (destroy the source).
 */
export function pipeReleasing(source: Readable, dest: Writable): void {
  source.on('data', (chunk: Buffer) => {
    if (!dest.write(chunk, (err) => err || releaseBuffer(chunk))) source.pause();
  });
  dest.on('drain', () => source.resume());
  source.once('end', () => dest.end());
}
