/**
 * Splits a backend path `/<device>/<partition>/<account>[/<container>[/<object...>]]` the way
 * Swift's `split_path` does: raw segments, each percent-decoded; the object keeps its slashes.
 */
import { BadRequestError, PreconditionFailedError } from '@swiftlet/common';

export interface BackendPath {
  device: string;
  part: string;
  account: string;
  container?: string;
  object?: string;
}

function decode(segment: string): string {
  let s: string;
  try {
    s = decodeURIComponent(segment);
  } catch {
    throw new PreconditionFailedError('Invalid UTF8 or contains NULL');
  }
  // NUL separates key components in the database; Swift's check_utf8 refuses it too.
  if (s.includes('\0')) throw new PreconditionFailedError('Invalid UTF8 or contains NULL');
  return s;
}

/** `minSegments`/`maxSegments` count device, partition, account, container, object. */
export function parseBackendPath(rawUrl: string, minSegments: number, maxSegments: number): BackendPath {
  const q = rawUrl.indexOf('?');
  const raw = q < 0 ? rawUrl : rawUrl.slice(0, q);
  if (!raw.startsWith('/')) throw new BadRequestError(`Invalid path: ${raw}`);
  const parts = raw.slice(1).split('/');
  const segs = parts.length > 4 ? [...parts.slice(0, 4), parts.slice(4).join('/')] : parts;
  // A trailing slash after the container is no object (Swift: an empty last segment is absent).
  if (segs.length === 5 && segs[4] === '') segs.pop();
  if (segs.length < minSegments || segs.length > maxSegments) throw new BadRequestError(`Invalid path: ${raw}`);
  const decoded = segs.map(decode);
  for (let i = 0; i < Math.min(decoded.length, 4); i++) {
    const d = decoded[i] as string;
    if (d === '' || (i < 2 && (d === '.' || d === '..' || d.includes('/')))) throw new BadRequestError(`Invalid path: ${raw}`);
  }
  const [device, part, account, container, object] = decoded as [string, string, string, string?, string?];
  const out: BackendPath = { device, part, account };
  if (container !== undefined) out.container = container;
  if (object !== undefined) out.object = object;
  return out;
}
