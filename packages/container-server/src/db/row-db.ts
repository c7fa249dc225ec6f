/**
 * The broker of one device's database: owners (containers or accounts) with their rows.
 *
 * Every change goes through `transact`, which holds an in-process mutex per owner while it reads,
 * merges and queues the new rows and the new owner info, then releases the mutex and waits for the
 * group commit. The next writer of the same owner must see queued-but-unsynced state, so the
 * owner's latest info and its queued rows stay in memory until their batch is on disk. Readers
 * (HEAD, listings) only see synced data, through one LevelDB snapshot, so counts always match rows.
 */
import { randomUUID } from 'node:crypto';
import type { BatchOp, DbSnapshot, DeviceDb } from './device-db.js';
import {
  deadKey,
  dirtyKey,
  infoKey,
  liveKey,
  parseOwnerKey,
  prefixEnd,
  rowPrefix,
  seqKey,
  seqPrefix,
  syncKey,
  type OwnerId,
} from './keys.js';
import { EMPTY_HASH, ZERO_TS, xorHex, type AnyRow, type RowModel } from './row-model.js';

export interface PolicyStats {
  rows: number;
  objects: number;
  bytes: number;
}

export interface OwnerInfo {
  /** Random id of this replica of the database; peers key their sync points by it. */
  id: string;
  createdAt: string;
  putTs: string;
  deleteTs: string;
  statusChangedAt: string;
  /** Container: its storage policy. Account: unused (0). */
  policyIndex: number;
  /** Header name (lower case) -> [value, timestamp]; an empty value is a deletion kept for merging. */
  meta: Record<string, [string, string]>;
  /** Container: live object rows. Account: live container rows. */
  rows: number;
  /** Objects: equal to `rows` in a container; the sum of container rows' object counts in an account. */
  objects: number;
  bytes: number;
  /** Account only: totals per storage policy index. */
  policies: Record<string, PolicyStats>;
  maxSeq: number;
  /** XOR of the digests of every row, live and deleted. */
  hash: string;
  /** Container only: bumped by every change the account must hear about. */
  updateGen: number;
  /** Timestamp of the newest change (row or owner), reported to the account as the stats timestamp. */
  lastChange: string;
}

export function newOwnerInfo(ts: string, policyIndex: number): OwnerInfo {
  return {
    id: randomUUID(),
    createdAt: ts,
    putTs: ts,
    deleteTs: ZERO_TS,
    statusChangedAt: ts,
    policyIndex,
    meta: {},
    rows: 0,
    objects: 0,
    bytes: 0,
    policies: {},
    maxSeq: 0,
    hash: EMPTY_HASH,
    updateGen: 0,
    lastChange: ts,
  };
}

interface OwnerState<R> {
  inflight: number;
  lock: Promise<void>;
  loaded: boolean;
  info: OwnerInfo | undefined;
  /** Rows queued for a batch that is not on disk yet, with the version that queued them. */
  rows: Map<string, { row: R; version: number }>;
}

interface RowQueue<R> {
  items: { name: string; row: R; resolve: (changed: boolean) => void; reject: (err: unknown) => void }[];
  running: boolean;
}

export interface Tx<R extends AnyRow> {
  /** The owner's info as of all earlier writes (mutable; call `touch()` after changing it). */
  info: OwnerInfo | undefined;
  getRow(name: string): Promise<R | undefined>;
  /** Reads the stored rows of many names with one LevelDB call, so later getRow/mergeRow need none. */
  prefetch(names: string[]): Promise<void>;
  /** Merges `incoming` into the row; true if the stored row changed. Needs `info`. */
  mergeRow(name: string, incoming: R): Promise<boolean>;
  /** The owner info changed: it is written with this transaction. */
  touch(): void;
  /** Queues a durable "account update owed" record in the same batch (container db). */
  markAccountDirty(): void;
  /** Extra raw operations for the same batch. */
  ops: BatchOp[];
}

export class RowDb<R extends AnyRow> {
  private states = new Map<string, OwnerState<R>>();
  private rowQueues = new Map<string, RowQueue<R>>();
  private version = 0;

  constructor(
    readonly dev: DeviceDb,
    readonly model: RowModel<R>,
  ) {}

  get device(): string {
    return this.dev.device;
  }

  async readInfo(owner: string, snapshot?: DbSnapshot): Promise<OwnerInfo | undefined> {
    const v = await this.dev.db.get(infoKey(owner), snapshot ? { snapshot } : {});
    return v === undefined ? undefined : (JSON.parse(v) as OwnerInfo);
  }

  async transact<T>(owner: string, fn: (tx: Tx<R>) => Promise<T> | T, onReleased?: () => void): Promise<T> {
    let state = this.states.get(owner);
    if (state === undefined) {
      state = { inflight: 0, lock: Promise.resolve(), loaded: false, info: undefined, rows: new Map() };
      this.states.set(owner, state);
    }
    const st = state;
    st.inflight++;
    let release!: () => void;
    const prev = st.lock;
    st.lock = new Promise<void>((r) => (release = r));
    let commit: Promise<void> | undefined;
    const version = ++this.version;
    const written = new Map<string, R>();
    try {
      await prev;
      if (!st.loaded) {
        st.info = await this.readInfo(owner);
        st.loaded = true;
      }
      const tx = this.makeTx(owner, st, written);
      const result = await fn(tx);
      // The info key is serialised last, so that it holds every change made through the tx.
      const infoOp = tx.ops.find((op) => op.key === infoKey(owner) && op.type === 'put' && op.value === '');
      if (infoOp !== undefined) {
        if (tx.info === undefined) Object.assign(infoOp, { type: 'del' });
        else (infoOp as { value: string }).value = JSON.stringify(tx.info);
      }
      if (tx.ops.length > 0) {
        st.info = tx.info;
        for (const [name, row] of written) st.rows.set(name, { row, version });
        commit = this.dev.write(tx.ops);
      }
      release();
      onReleased?.();
      if (commit !== undefined) await commit;
      return result;
    } finally {
      release();
      onReleased?.();
      for (const name of written.keys()) {
        if (st.rows.get(name)?.version === version) st.rows.delete(name);
      }
      if (--st.inflight === 0) this.states.delete(owner);
    }
  }

  private makeTx(owner: string, st: OwnerState<R>, written: Map<string, R>): Tx<R> {
    const model = this.model;
    const db = this.dev.db;
    let infoDirty = false;
    const info: OwnerInfo | undefined = st.info === undefined ? undefined : structuredClone(st.info);
    const ops: BatchOp[] = [];
    const fetched = new Map<string, R | undefined>();
    const decode = (live: string | undefined, dead: string | undefined): R | undefined =>
      live !== undefined ? model.decode(live, false) : dead !== undefined ? model.decode(dead, true) : undefined;
    const tx: Tx<R> = {
      info,
      ops,
      getRow: async (name) => {
        const w = written.get(name) ?? st.rows.get(name)?.row;
        if (w !== undefined) return w;
        if (fetched.has(name)) return fetched.get(name);
        const [live, dead] = await db.getMany([liveKey(owner, name), deadKey(owner, name)]);
        return decode(live, dead);
      },
      prefetch: async (names) => {
        const todo = names.filter((n) => !written.has(n) && !st.rows.has(n) && !fetched.has(n));
        if (todo.length === 0) return;
        const values = await db.getMany(todo.flatMap((n) => [liveKey(owner, n), deadKey(owner, n)]));
        todo.forEach((n, i) => fetched.set(n, decode(values[2 * i], values[2 * i + 1])));
      },
      mergeRow: async (name, incoming) => {
        const inf = tx.info;
        if (inf === undefined) throw new Error('mergeRow without owner info');
        const existing = await tx.getRow(name);
        const merged = model.merge(existing, incoming);
        if (merged === undefined) return false;
        const seq = ++inf.maxSeq;
        const row = { ...merged, seq } as R;
        if (existing !== undefined) {
          ops.push({ type: 'del', key: existing.deleted ? deadKey(owner, name) : liveKey(owner, name) });
          ops.push({ type: 'del', key: seqKey(owner, existing.seq) });
          inf.hash = xorHex(inf.hash, model.digest(name, existing));
          if (!existing.deleted) addContribution(inf, model, existing, -1);
        }
        ops.push({ type: 'put', key: row.deleted ? deadKey(owner, name) : liveKey(owner, name), value: model.encode(row) });
        ops.push({ type: 'put', key: seqKey(owner, seq), value: name });
        inf.hash = xorHex(inf.hash, model.digest(name, row));
        if (!row.deleted) addContribution(inf, model, row, 1);
        written.set(name, row);
        tx.touch();
        return true;
      },
      touch: () => {
        if (!infoDirty) {
          infoDirty = true;
          ops.push({ type: 'put', key: infoKey(owner), value: '' });
        }
      },
      markAccountDirty: () => {
        const inf = tx.info;
        if (inf === undefined) return;
        inf.updateGen++;
        tx.touch();
        ops.push({ type: 'put', key: dirtyKey(owner), value: String(inf.updateGen) });
      },
    };
    return tx;
  }

  /**
   * Merges one row, grouped with the other rows of the same owner queued meanwhile: one mutex
   * turn, one LevelDB read and one batch for the whole group (the owner-level group commit that
   * keeps a single hot container fast). Resolves once the row is on disk: true if it changed.
   * Rejects with `missing()` if the owner does not exist.
   */
  queueRow(owner: string, name: string, row: R, opts: { markAccountDirty: boolean; missing: () => Error }): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let q = this.rowQueues.get(owner);
      if (q === undefined) {
        q = { items: [], running: false };
        this.rowQueues.set(owner, q);
      }
      q.items.push({ name, row, resolve, reject });
      if (!q.running) void this.drainRows(owner, q, opts);
    });
  }

  private async drainRows(owner: string, q: RowQueue<R>, opts: { markAccountDirty: boolean; missing: () => Error }): Promise<void> {
    q.running = true;
    try {
      while (q.items.length > 0) {
        const group = q.items.splice(0);
        const changed: boolean[] = [];
        let released!: () => void;
        const turnDone = new Promise<void>((r) => (released = r));
        this.transact(
          owner,
          async (tx) => {
            if (tx.info === undefined) throw opts.missing();
            await tx.prefetch([...new Set(group.map((g) => g.name))]);
            let any = false;
            for (const g of group) {
              const c = await tx.mergeRow(g.name, g.row);
              changed.push(c);
              any ||= c;
            }
            if (any && opts.markAccountDirty) tx.markAccountDirty();
          },
          released,
        ).then(
          () => group.forEach((g, i) => g.resolve(changed[i] as boolean)),
          (err: unknown) => group.forEach((g) => g.reject(err)),
        );
        // The next group forms while this one is read and merged; it may start once this one
        // is queued for the disk, so groups overlap the sync of the previous batch.
        await turnDone;
      }
    } finally {
      q.running = false;
      if (q.items.length === 0) this.rowQueues.delete(owner);
      else void this.drainRows(owner, q, opts);
    }
  }

  // ---- reads used by the updater and the replicator ----

  /** Every owner of this device database, in key order. */
  async *owners(): AsyncGenerator<{ owner: string; id: OwnerId; info: OwnerInfo }> {
    for await (const [key, value] of this.dev.db.iterator({ gt: 's\0', lt: 's\x01' })) {
      const owner = key.slice(2);
      yield { owner, id: parseOwnerKey(owner), info: JSON.parse(value) as OwnerInfo };
    }
  }

  /** Owners with a pending account update: [owner, generation]. */
  async pendingAccountUpdates(): Promise<[string, number][]> {
    const out: [string, number][] = [];
    for await (const [key, value] of this.dev.db.iterator({ gt: 'u\0', lt: 'u\x01' })) out.push([key.slice(2), Number(value)]);
    return out;
  }

  /** Deletes the pending account update if no change happened since generation `gen` was sent. */
  async clearAccountUpdate(owner: string, gen: number): Promise<boolean> {
    return this.transact(owner, (tx) => {
      if (tx.info !== undefined && tx.info.updateGen !== gen) return false;
      tx.ops.push({ type: 'del', key: dirtyKey(owner) });
      return true;
    });
  }

  /** Rows changed after `afterSeq`, in sequence order, at most `limit`. */
  async rowsSince(owner: string, afterSeq: number, limit: number): Promise<{ name: string; row: R }[]> {
    const snapshot = this.dev.snapshot();
    try {
      const names = await this.dev.db
        .iterator({ gt: seqKey(owner, afterSeq), lt: prefixEnd(seqPrefix(owner)), limit, snapshot })
        .all();
      const out: { name: string; row: R }[] = [];
      const keys = names.flatMap(([, name]) => [liveKey(owner, name), deadKey(owner, name)]);
      const values = await this.dev.db.getMany(keys, { snapshot });
      names.forEach(([, name], i) => {
        const live = values[2 * i];
        const dead = values[2 * i + 1];
        if (live !== undefined) out.push({ name, row: this.model.decode(live, false) });
        else if (dead !== undefined) out.push({ name, row: this.model.decode(dead, true) });
      });
      return out;
    } finally {
      await snapshot.close();
    }
  }

  async getSyncPoint(owner: string, peerId: string): Promise<number> {
    const v = await this.dev.db.get(syncKey(owner, peerId));
    return v === undefined ? 0 : Number(v);
  }

  async setSyncPoint(owner: string, peerId: string, seq: number): Promise<void> {
    await this.dev.write([{ type: 'put', key: syncKey(owner, peerId), value: String(seq) }]);
  }

  /** Deletes every key of an owner (a reclaimed deleted container/account, or a pushed handoff). */
  async removeOwner(owner: string, expectedGen?: { maxSeq: number }): Promise<boolean> {
    return this.transact(owner, async (tx) => {
      if (expectedGen !== undefined && tx.info !== undefined && tx.info.maxSeq !== expectedGen.maxSeq) return false;
      for (const space of ['o', 'd', 'q', 'p'] as const) {
        const prefix = space === 'o' || space === 'd' ? rowPrefix(space, owner) : `${space}\0${owner}\0`;
        for await (const key of this.dev.db.keys({ gte: prefix, lt: prefixEnd(prefix) })) tx.ops.push({ type: 'del', key });
      }
      tx.ops.push({ type: 'del', key: infoKey(owner) }, { type: 'del', key: dirtyKey(owner) });
      tx.info = undefined;
      return true;
    });
  }

  /** Removes deleted rows whose timestamp is older than `beforeTs` (reclaim_age). */
  async reclaimRows(owner: string, isOlder: (row: R) => boolean): Promise<number> {
    const candidates: string[] = [];
    const prefix = rowPrefix('d', owner);
    for await (const [key, value] of this.dev.db.iterator({ gte: prefix, lt: prefixEnd(prefix) })) {
      if (isOlder(this.model.decode(value, true))) candidates.push(key.slice(prefix.length));
      if (candidates.length >= 10_000) break;
    }
    if (candidates.length === 0) return 0;
    return this.transact(owner, async (tx) => {
      let n = 0;
      const inf = tx.info;
      if (inf === undefined) return 0;
      for (const name of candidates) {
        const row = await tx.getRow(name);
        if (row === undefined || !row.deleted || !isOlder(row)) continue;
        tx.ops.push({ type: 'del', key: deadKey(owner, name) }, { type: 'del', key: seqKey(owner, row.seq) });
        inf.hash = xorHex(inf.hash, this.model.digest(name, row));
        n++;
      }
      if (n > 0) tx.touch();
      return n;
    });
  }
}

function addContribution<R extends AnyRow>(info: OwnerInfo, model: RowModel<R>, row: R, sign: 1 | -1): void {
  const c = model.contribution(row);
  info.rows += sign * c.rows;
  info.objects += sign * c.objects;
  info.bytes += sign * c.bytes;
  if (model.kind === 'account') {
    const p = (info.policies[String(c.policyIndex)] ??= { rows: 0, objects: 0, bytes: 0 });
    p.rows += sign * c.rows;
    p.objects += sign * c.objects;
    p.bytes += sign * c.bytes;
  }
}
