/**
 * Parsing and validating the backend paths `/<device>/<partition>/<account>/<container>/<object>`
 * (and the shorter replication forms). A bad path is refused before anything touches a disk.
 */
import { BadRequestError, StoreError } from '@swiftlet/common';

/** Swift's limit at the object server: 1024 code points of the decoded name. */
export const MAX_OBJECT_NAME_LENGTH = 1024;

export interface ObjectPath {
  device: string;
  partition: number;
  account: string;
  container: string;
  object: string;
}

/** 412, as Swift answers a path that is not valid UTF-8. */
export class InvalidUtf8Error extends StoreError {
  constructor() {
    super(412, 'PreconditionFailed', 'Invalid UTF8 or contains NULL');
  }
}

export function decode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new InvalidUtf8Error();
  }
}

export function validateDevice(device: string): string {
  if (device === '' || device === '.' || device === '..' || device.includes('/') || device.includes('\0')) {
    throw new BadRequestError(`Invalid device: ${JSON.stringify(device)}`);
  }
  return device;
}

export function validatePartition(raw: string): number {
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > 0xffffffff) {
    throw new BadRequestError(`Invalid partition: ${JSON.stringify(raw)} (must be a non-negative integer)`);
  }
  return Number(raw);
}

/** Splits a raw (still percent-encoded) URL path into `count` decoded segments, the last taking the rest. */
function splitPath(rawPath: string, count: number): string[] | undefined {
  if (!rawPath.startsWith('/')) return undefined;
  const parts: string[] = [];
  let rest = rawPath.slice(1);
  for (let i = 0; i < count - 1; i++) {
    const slash = rest.indexOf('/');
    if (slash < 0) return undefined;
    parts.push(rest.slice(0, slash));
    rest = rest.slice(slash + 1);
  }
  parts.push(rest);
  return parts;
}

export function parseObjectPath(rawPath: string): ObjectPath {
  const parts = splitPath(rawPath, 5);
  if (!parts || parts.slice(0, 4).some((p) => p === '') || parts[4] === '') {
    throw new BadRequestError(`Invalid path: ${rawPath.slice(0, 200)} (expected /<device>/<partition>/<account>/<container>/<object>)`);
  }
  const [device, partition, account, container, object] = parts.map(decode) as [string, string, string, string, string];
  if ([device, partition, account, container].some((p) => p.includes('/'))) {
    throw new BadRequestError(`Invalid path: ${rawPath.slice(0, 200)}`);
  }
  if ([account, container, object].some((p) => p.includes('\0'))) {
    throw new BadRequestError('Invalid path: contains NULL');
  }
  // Swift refuses `.`/`..` as device and partition only; account/container names are opaque.
  validateDevice(device);
  const part = validatePartition(partition);
  if ([...object].length > MAX_OBJECT_NAME_LENGTH) {
    throw new BadRequestError(`Object name length of ${[...object].length} longer than ${MAX_OBJECT_NAME_LENGTH}`);
  }
  return { device, partition: part, account, container, object };
}

/** `/_replicate/<device>/<partition>[/<suffix>-<suffix>...]` after the route prefix. */
export function parseReplicatePath(device: string, partition: string, suffixes?: string): { device: string; partition: number; suffixes: string[] } {
  const dev = validateDevice(decode(device));
  const part = validatePartition(decode(partition));
  const list = suffixes ? decode(suffixes).split('-').filter((s) => s !== '') : [];
  for (const s of list) {
    if (!/^[0-9a-f]{3}$/.test(s)) throw new BadRequestError(`Invalid suffix: ${JSON.stringify(s)}`);
  }
  return { device: dev, partition: part, suffixes: list };
}
