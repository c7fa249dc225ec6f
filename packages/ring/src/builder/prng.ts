import { randomBytes } from 'node:crypto';

/**
 * A small seeded PRNG (mulberry32 over a splitmix32-mixed seed): the builder's randomness must be
 * reproducible from `--seed`, which Math.random cannot give.
 */
export class Prng {
  private state: number;

  constructor(seed?: number | bigint | string) {
    this.state = seed === undefined ? randomBytes(4).readUInt32LE(0) : Prng.mix(seed);
  }

  private static mix(seed: number | bigint | string): number {
    // Fold any seed (large integers, strings) into 32 bits, then scramble it.
    const text = String(seed);
    let h = 0x811c9dc5;
    for (let i = 0; i < text.length; i++) {
      h ^= text.charCodeAt(i);
      h = Math.imul(h, 0x01000193);
    }
    h = (h + 0x9e3779b9) | 0;
    h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
    return (h ^ (h >>> 16)) >>> 0;
  }

  /** Uniform in [0, 2^32). */
  nextUint32(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) | 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform integer in [lo, hi] (both inclusive, like Python's randint). */
  randint(lo: number, hi: number): number {
    const span = hi - lo + 1;
    if (span <= 0x100000000) return lo + Math.floor((this.nextUint32() / 0x100000000) * span);
    return lo + Math.floor(((this.nextUint32() * 0x100000000 + this.nextUint32()) / 2 ** 64) * span);
  }

  /** In-place Fisher-Yates shuffle of the first `n` entries. */
  shuffle(a: Uint32Array | number[], n = a.length): void {
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(0, i);
      const t = a[i]!;
      a[i] = a[j]!;
      a[j] = t;
    }
  }
}
