/**
 * What a row is in each kind of database, how two versions of a row merge, and what a live row
 * adds to its owner's totals. The container database's rows are objects; the account database's
 * rows are containers (Swift's `object` and `container` tables).
 */
import { createHash } from 'node:crypto';
import { Timestamp } from '@swiftlet/common';

/** An object row (container database). `ts` is the object's X-Timestamp. */
export interface ObjectRow {
  ts: string;
  deleted: boolean;
  size: number;
  contentType: string;
  etag: string;
  /** Change-log sequence number of this row in this database (local, not replicated). */
  seq: number;
}

/** A container row (account database), as the container server reports it. */
export interface ContainerRow {
  putTs: string;
  deleteTs: string;
  objects: number;
  bytes: number;
  policyIndex: number;
  /** When the container last changed (its newest row or timestamp); older reports lose. */
  statsTs: string;
  deleted: boolean;
  seq: number;
}

export type AnyRow = ObjectRow | ContainerRow;

/** What a live row adds to the owner's totals. */
export interface Contribution {
  rows: number;
  objects: number;
  bytes: number;
  policyIndex: number;
}

export interface RowModel<R extends AnyRow> {
  readonly kind: 'container' | 'account';
  /** The row to store after `incoming` meets `existing`, or undefined if nothing changes. */
  merge(existing: R | undefined, incoming: R): R | undefined;
  contribution(row: R): Contribution;
  /** Replication digest of a row: equal rows on two replicas give equal digests. */
  digest(name: string, row: R): string;
  encode(row: R): string;
  decode(value: string, deleted: boolean): R;
}

const ZERO_TS = new Timestamp(0).internal;
export { ZERO_TS };

function md5hex(s: string): string {
  return createHash('md5').update(s).digest('hex');
}

function tsCompare(a: string, b: string): number {
  return Timestamp.parse(a).compare(Timestamp.parse(b));
}

export const objectRowModel: RowModel<ObjectRow> = {
  kind: 'container',
  merge(existing, incoming) {
    // Newer wins; at equal timestamps the stored row stays (Swift: an older or equal update is ignored).
    if (existing !== undefined && tsCompare(incoming.ts, existing.ts) <= 0) return undefined;
    return incoming;
  },
  contribution(row) {
    return { rows: 1, objects: 1, bytes: row.size, policyIndex: 0 };
  },
  digest(name, row) {
    return md5hex(`${name}-${row.ts}-${row.deleted ? 1 : 0}`);
  },
  encode(row) {
    return row.deleted ? JSON.stringify([row.ts, row.seq]) : JSON.stringify([row.ts, row.seq, row.size, row.contentType, row.etag]);
  },
  decode(value, deleted) {
    const a = JSON.parse(value) as [string, number, number?, string?, string?];
    return { ts: a[0], seq: a[1], deleted, size: a[2] ?? 0, contentType: a[3] ?? '', etag: a[4] ?? '' };
  },
};

export const containerRowModel: RowModel<ContainerRow> = {
  kind: 'account',
  merge(existing, incoming) {
    if (existing === undefined) return { ...incoming, deleted: isContainerRowDeleted(incoming) };
    // Swift's account merge: each timestamp keeps its maximum; the counts come from the newer report.
    const putTs = tsCompare(incoming.putTs, existing.putTs) > 0 ? incoming.putTs : existing.putTs;
    const deleteTs = tsCompare(incoming.deleteTs, existing.deleteTs) > 0 ? incoming.deleteTs : existing.deleteTs;
    const newerStats = tsCompare(incoming.statsTs, existing.statsTs) >= 0;
    const merged: ContainerRow = {
      putTs,
      deleteTs,
      objects: newerStats ? incoming.objects : existing.objects,
      bytes: newerStats ? incoming.bytes : existing.bytes,
      policyIndex: newerStats ? incoming.policyIndex : existing.policyIndex,
      statsTs: newerStats ? incoming.statsTs : existing.statsTs,
      deleted: false,
      seq: existing.seq,
    };
    merged.deleted = isContainerRowDeleted(merged);
    if (
      merged.putTs === existing.putTs &&
      merged.deleteTs === existing.deleteTs &&
      merged.objects === existing.objects &&
      merged.bytes === existing.bytes &&
      merged.policyIndex === existing.policyIndex &&
      merged.statsTs === existing.statsTs
    ) {
      return undefined;
    }
    return merged;
  },
  contribution(row) {
    return { rows: 1, objects: row.objects, bytes: row.bytes, policyIndex: row.policyIndex };
  },
  digest(name, row) {
    return md5hex(`${name}-${row.putTs}-${row.deleteTs}-${row.statsTs}-${row.objects}-${row.bytes}`);
  },
  encode(row) {
    return JSON.stringify([row.putTs, row.deleteTs, row.objects, row.bytes, row.policyIndex, row.statsTs, row.seq]);
  },
  decode(value, deleted) {
    const a = JSON.parse(value) as [string, string, number, number, number, string, number];
    return { putTs: a[0], deleteTs: a[1], objects: a[2], bytes: a[3], policyIndex: a[4], statsTs: a[5], seq: a[6], deleted };
  },
};

/** Swift: a container row is deleted when its delete timestamp is newer than its put and it is empty. */
export function isContainerRowDeleted(row: Pick<ContainerRow, 'putTs' | 'deleteTs' | 'objects'>): boolean {
  return tsCompare(row.deleteTs, row.putTs) > 0 && row.objects === 0;
}

/** XOR of two 32-hex-digit digests (Swift's chexor): order-independent, so replicas compare cheaply. */
export function xorHex(a: string, b: string): string {
  const x = Buffer.from(a, 'hex');
  const y = Buffer.from(b, 'hex');
  for (let i = 0; i < x.length; i++) x[i] = (x[i] as number) ^ (y[i] as number);
  return x.toString('hex');
}

export const EMPTY_HASH = '0'.repeat(32);
