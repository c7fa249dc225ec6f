/**
 * The rings this package consults: the object ring of a policy (the tar receiver needs the part
 * power to check that offered hashes belong to the partition) and the container ring (the updater
 * re-looks up container replicas of an async pending that names none). Loaded lazily and kept;
 * the Ring reloads itself when its file changes.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { policySuffix, ServiceUnavailableError } from '@swiftlet/common';
import { Ring } from '@swiftlet/ring';

export class RingCache {
  private readonly rings = new Map<string, Ring>();

  constructor(private readonly swiftDir: string) {}

  ringFile(kind: 'object' | 'container', policyIndex = 0): string {
    return join(this.swiftDir, `${kind}${kind === 'object' ? policySuffix(policyIndex) : ''}.ring.gz`);
  }

  /** The ring, or 503 naming the missing or unreadable file. */
  get(kind: 'object' | 'container', policyIndex = 0): Ring {
    const key = `${kind}:${policyIndex}`;
    const cached = this.rings.get(key);
    if (cached) return cached;
    const file = this.ringFile(kind, policyIndex);
    if (!existsSync(file)) throw new ServiceUnavailableError(`${kind} ring ${file} not found`);
    let ring: Ring;
    try {
      ring = Ring.forKind(this.swiftDir, kind, kind === 'object' ? policyIndex : undefined);
    } catch (err) {
      throw new ServiceUnavailableError(`${kind} ring ${file} unusable: ${(err as Error).message}`);
    }
    this.rings.set(key, ring);
    return ring;
  }
}
