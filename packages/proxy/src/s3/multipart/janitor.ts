/**
 * The multipart janitor: a periodic sweep in the proxy (bounded work per run) over every segments
 * container it knows of, plus an immediate look at a key right after a Complete.
 *
 * - A "done" upload record notes that its segments belong to the manifest written at
 *   `X-Object-Sysmeta-S3-Mpu-Manifest-Timestamp`. They are removed only once the key answers
 *   something strictly newer than that manifest (another object, another upload's manifest, or a
 *   tombstone): a stale replica can only answer something older, so a segment still referenced is
 *   never removed. Manifests reference only their own upload's segments (names carry the upload
 *   id), so nothing else can point at them.
 * - An "open" upload with no activity (record and parts) for `abandoned_upload_expiry` seconds is
 *   aborted: record first (so UploadPart/Complete answer NoSuchUpload), then its parts; unless the
 *   key holds that upload's manifest (a Complete cut before marking its record), then the record is
 *   marked done instead.
 *
 * The segments containers are found through rows `<account>/<bucket>` of the container
 * `multipart-buckets` in the registry account, written before a segments container is created.
 */
import type { Logger } from '@swiftlet/common';
import type { S3Config } from '../s3-config.js';
import type { ObjectRow, S3Storage, SubdirRow } from '../storage.js';
import { manifestUploadId } from './manifest.js';
import { listingTimeMs, parseRecordName, recordContentType, recordName, recordState, segmentsContainer, timestampSeconds } from './names.js';

export const JANITOR_CONTAINER = 'multipart-buckets';
/** Default of `[s3api] abandoned_upload_expiry` (seconds). */
export const DEFAULT_ABANDONED_UPLOAD_EXPIRY_S = 7 * 24 * 3600;
/** A 404 that names no timestamp proves nothing about an old manifest until this long after it. */
const UNDATED_ABSENCE_GRACE_S = 24 * 3600;
const RECORD_MANIFEST_TIMESTAMP = 'x-object-sysmeta-s3-mpu-manifest-timestamp';

export interface JanitorEnv {
  storage: S3Storage;
  config: Pick<S3Config, 'registryAccount' | 'multiDeleteConcurrency'> & { abandonedUploadExpiryS?: number };
  logger: Logger;
}

function ok(status: number): boolean {
  return status >= 200 && status < 300;
}

const ensured = new WeakMap<S3Storage, Promise<void>>();

async function ensureJanitorContainer(env: JanitorEnv): Promise<void> {
  let p = ensured.get(env.storage);
  if (!p) {
    p = (async () => {
      const acct = env.config.registryAccount;
      const head = await env.storage.headContainer(acct, JANITOR_CONTAINER);
      if (ok(head.status)) return;
      const a = await env.storage.headAccount(acct);
      if (a.status === 404) {
        const put = await env.storage.putAccount(acct);
        if (!ok(put.status)) throw new Error(`janitor account PUT answered ${put.status}`);
      }
      const c = await env.storage.putContainer(acct, JANITOR_CONTAINER);
      if (!ok(c.status)) throw new Error(`janitor container PUT answered ${c.status}`);
    })();
    p.catch(() => ensured.delete(env.storage));
    ensured.set(env.storage, p);
  }
  return p;
}

/** Makes the janitor sweep `<bucket>+segments` of `account` from now on. */
export async function rememberSegmentsContainer(env: JanitorEnv, account: string, bucket: string): Promise<void> {
  await ensureJanitorContainer(env);
  const res = await env.storage.putObject(env.config.registryAccount, JANITOR_CONTAINER, `${account}/${bucket}`, Buffer.alloc(0), {
    'Content-Type': 'application/x-swiftlet-segments',
    'Content-Length': '0',
  });
  if (!ok(res.status)) throw new Error(`janitor row PUT answered ${res.status}`);
}

type RemoveUpload = (env: JanitorEnv, acct: string, bucket: string, key: string, uploadId: string) => Promise<number>;

export interface SweepStats {
  containers: number;
  rows: number;
  removedUploads: number;
  expiredUploads: number;
}

export class MultipartJanitor {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;
  /** Where the next run continues in each segments container (bounded work per run). */
  private readonly markers = new Map<string, string>();
  readonly expiryS: number;
  readonly intervalS: number;

  constructor(
    private readonly env: JanitorEnv,
    private readonly removeUpload: RemoveUpload,
    opts: { rowsPerRun?: number } = {},
  ) {
    this.expiryS = env.config.abandonedUploadExpiryS ?? DEFAULT_ABANDONED_UPLOAD_EXPIRY_S;
    // Often enough that an expiry is kept within ~5 %, never more than every 5 minutes.
    this.intervalS = Math.min(300, Math.max(0.5, this.expiryS / 20));
    this.rowsPerRun = opts.rowsPerRun ?? 5000;
  }
  private readonly rowsPerRun: number;

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      if (this.running) return;
      this.running = this.sweepOnce()
        .catch((err: unknown) => this.env.logger.warn({ err }, 'multipart janitor sweep failed'))
        .finally(() => {
          this.running = undefined;
        });
    }, this.intervalS * 1000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One bounded pass; returns what it did. */
  async sweepOnce(): Promise<SweepStats> {
    const stats: SweepStats = { containers: 0, rows: 0, removedUploads: 0, expiredUploads: 0 };
    const acct = this.env.config.registryAccount;
    let marker: string | undefined;
    for (;;) {
      const res = await this.env.storage.listContainer(acct, JANITOR_CONTAINER, { limit: 1000, ...(marker ? { marker } : {}) });
      if (!ok(res.status)) break;
      const rows = res.rows.filter((x): x is ObjectRow => (x as SubdirRow).subdir === undefined);
      for (const row of rows) {
        const slash = row.name.lastIndexOf('/');
        if (slash <= 0) continue;
        stats.containers++;
        await this.sweepContainer(row.name.slice(0, slash), row.name.slice(slash + 1), stats);
        if (stats.rows >= this.rowsPerRun) break;
      }
      if (rows.length < 1000 || stats.rows >= this.rowsPerRun) break;
      marker = rows.at(-1)!.name;
    }
    if (stats.removedUploads + stats.expiredUploads > 0) this.env.logger.info({ ...stats }, 'multipart janitor pass');
    return stats;
  }

  private async sweepContainer(account: string, bucket: string, stats: SweepStats): Promise<void> {
    const segments = segmentsContainer(bucket);
    const id = `${account}/${bucket}`;
    let marker = this.markers.get(id);
    while (stats.rows < this.rowsPerRun) {
      const limit = Math.min(1000, this.rowsPerRun - stats.rows);
      const res = await this.env.storage.listContainer(account, segments, { limit, ...(marker ? { marker } : {}) });
      if (!ok(res.status)) {
        this.markers.delete(id);
        return;
      }
      const rows = res.rows.filter((x): x is ObjectRow => (x as SubdirRow).subdir === undefined);
      for (const row of rows) {
        stats.rows++;
        const state = recordState(row.content_type);
        const parsed = state ? parseRecordName(row.name) : undefined;
        if (!state || !parsed) continue;
        try {
          const outcome = await this.settle(account, bucket, parsed.key, parsed.uploadId, state, listingTimeMs(row.last_modified));
          if (outcome === 'removed') stats.removedUploads++;
          if (outcome === 'expired') stats.expiredUploads++;
        } catch (err) {
          this.env.logger.warn({ err, account, bucket, key: parsed.key, uploadId: parsed.uploadId }, 'multipart janitor: upload not settled');
        }
      }
      if (res.rows.length < limit) {
        this.markers.delete(id);
        return;
      }
      marker = (res.rows.at(-1) as ObjectRow).name;
      this.markers.set(id, marker);
    }
  }

  /** Right after a Complete: the other completed uploads of this key are likely superseded. */
  async settleKey(account: string, bucket: string, key: string): Promise<void> {
    const res = await this.env.storage.listContainer(account, segmentsContainer(bucket), { prefix: `${key}/`, limit: 1000 });
    if (!ok(res.status)) return;
    for (const row of res.rows as ObjectRow[]) {
      if (recordState(row.content_type ?? '') !== 'done') continue;
      const parsed = parseRecordName(row.name);
      if (!parsed || parsed.key !== key) continue;
      await this.settle(account, bucket, key, parsed.uploadId, 'done', listingTimeMs(row.last_modified));
    }
  }

  private async settle(account: string, bucket: string, key: string, uploadId: string, state: 'open' | 'done', recordTimeMs: number): Promise<'kept' | 'removed' | 'expired'> {
    const storage = this.env.storage;
    const segments = segmentsContainer(bucket);
    if (state === 'done') {
      const rec = await storage.headObject(account, segments, recordName(key, uploadId));
      if (!ok(rec.status)) return 'kept';
      const manifestTs = timestampSeconds(rec.headers[RECORD_MANIFEST_TIMESTAMP]);
      if (manifestTs === undefined) return 'kept';
      const current = await storage.headObject(account, bucket, key);
      const currentTs = timestampSeconds(current.headers['x-backend-timestamp'] ?? current.headers['x-timestamp']);
      let superseded = false;
      if (ok(current.status)) superseded = manifestUploadId(current.headers) !== uploadId && currentTs !== undefined && currentTs > manifestTs;
      else if (current.status === 404) {
        superseded = currentTs !== undefined ? currentTs > manifestTs : Date.now() / 1000 - manifestTs > UNDATED_ABSENCE_GRACE_S;
      }
      if (!superseded) return 'kept';
      await this.removeUpload(this.env, account, bucket, key, uploadId);
      return 'removed';
    }
    const nowMs = Date.now();
    if (nowMs - recordTimeMs < this.expiryS * 1000) return 'kept';
    // Activity: the newest part counts too (an upload still receiving parts is not abandoned).
    const parts = await storage.listContainer(account, segments, { prefix: `${key}/${uploadId}/`, limit: 10000 });
    if (!ok(parts.status)) return 'kept';
    const newest = Math.max(recordTimeMs, ...(parts.rows as ObjectRow[]).map((p) => listingTimeMs(p.last_modified)));
    if (nowMs - newest < this.expiryS * 1000) return 'kept';
    const current = await storage.headObject(account, bucket, key);
    if (ok(current.status) && manifestUploadId(current.headers) === uploadId) {
      const rec = await storage.headObject(account, segments, recordName(key, uploadId));
      const meta: Record<string, string> = {};
      for (const [k, v] of Object.entries(rec.headers)) if (k.startsWith('x-object-meta-') || k.startsWith('x-object-sysmeta-')) meta[k] = v;
      await storage.putObject(account, segments, recordName(key, uploadId), Buffer.alloc(0), {
        ...meta,
        'X-Object-Sysmeta-S3-Mpu-Manifest-Timestamp': current.headers['x-backend-timestamp'] ?? current.headers['x-timestamp'] ?? '0',
        'Content-Type': recordContentType('done'),
        'Content-Length': '0',
      });
      return 'kept';
    }
    const del = await storage.deleteObject(account, segments, recordName(key, uploadId));
    if (!ok(del.status) && del.status !== 404) return 'kept';
    await this.removeUpload(this.env, account, bucket, key, uploadId);
    this.env.logger.info({ account, bucket, key, uploadId, idleS: Math.round((nowMs - newest) / 1000) }, 'abandoned multipart upload expired');
    return 'expired';
  }
}
