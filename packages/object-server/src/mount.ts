import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Swift's ismount: a directory on a different filesystem device than its parent (or `/`). */
export async function isMountPoint(path: string): Promise<boolean> {
  const [self, parent] = await Promise.all([stat(path).catch(() => undefined), stat(dirname(path)).catch(() => undefined)]);
  if (!self?.isDirectory() || !parent) return false;
  return self.dev !== parent.dev || self.ino === parent.ino;
}
