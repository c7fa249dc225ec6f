/**
 * The replication endpoints the replicator calls on its peers (a POST form of Swift's REPLICATE,
 * since Node's HTTP parser refuses unknown methods; and the tar sync receiver):
 *   POST /_replicate/<device>/<partition>[/<suffix>-<suffix>...]  -> {"<suffix>": "<md5>"}
 *   POST /_replicate/<device>  {"partitions": [p, ...]}  -> {"<p>": {"<suffix>": "<md5>"}, ...}
 *     (beyond Swift: many partitions' hashes in one round trip, for in-sync passes)
 *   POST /_replicate/<device>  {"partitions": [p, ...], "digests": {"<p>": "<digest>"}}
 *     -> {"same": [p, ...], "hashes": {"<p>": {"<suffix>": "<md5>"}}}: a partition whose digest
 *     of suffix hashes (diskfile's hashesDigest) equals the caller's is only listed as the same
 *   POST /_sync/<device>/<partition>/missing  {"offered": [...]}  -> {"wanted": [...]}
 *   PUT  /_sync/<device>/<partition>  (application/x-tar)        -> {"received": n, "skipped": n}
 *     with X-Recalculate-Suffixes: <suffix>-<suffix>...: those suffixes are rehashed once the
 *     push is published, and the answer adds {"hashes": {"<suffix>": "<md5>"}} (what the
 *     recalculating REPLICATE would answer, without its round trip)
 */
import { BadRequestError, readBody, type SwiftConf } from '@swiftlet/common';
import type { DiskFileManager } from '@swiftlet/diskfile';
import { pipeline } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Context } from 'koa';
import type { ObjectServerConfig } from './config.js';
import { sendContinue } from './object-controller.js';
import { policyIndex } from './request-headers.js';
import { decode, parseReplicatePath, validateDevice } from './request-path.js';
import type { RingCache } from './rings.js';

/** A `missing` request lists file names only; 64 MiB is far beyond any partition's listing. */
const MAX_MISSING_BODY = 64 * 1024 * 1024;
/** Partitions one batched REPLICATE may name (the replicator asks for 256 at a time). */
export const MAX_BATCH_PARTITIONS = 4096;

export class ReplicationController {
  constructor(
    private readonly config: ObjectServerConfig,
    private readonly swiftConf: SwiftConf,
    private readonly diskfiles: DiskFileManager,
    private readonly rings: RingCache,
  ) {}

  async replicate(ctx: Context, device: string, partition: string, suffixes?: string): Promise<void> {
    const p = parseReplicatePath(device, partition, suffixes);
    const policy = policyIndex(ctx.req.headers, this.swiftConf);
    await this.diskfiles.checkDevice(p.device);
    const hashes = await this.diskfiles.getHashes(p.device, p.partition, policy, { recalculate: p.suffixes });
    ctx.status = 200;
    ctx.body = hashes;
  }

  /** The suffix hashes of many partitions of one device (each as a REPLICATE without suffixes). */
  async replicateMany(ctx: Context, device: string): Promise<void> {
    const dev = validateDevice(decode(device));
    const policy = policyIndex(ctx.req.headers, this.swiftConf);
    await this.diskfiles.checkDevice(dev);
    let partitions: unknown;
    let digests: unknown;
    try {
      ({ partitions, digests } = JSON.parse((await readBody(ctx.req, 1024 * 1024)).toString('utf8')) as { partitions?: unknown; digests?: unknown });
    } catch (err) {
      throw new BadRequestError(`Invalid JSON body: ${(err as Error).message}`);
    }
    if (
      !Array.isArray(partitions) ||
      partitions.length > MAX_BATCH_PARTITIONS ||
      partitions.some((p) => typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p > 0xffffffff)
    ) {
      throw new BadRequestError(`Body must be {"partitions": [<partition>, ...]} with at most ${MAX_BATCH_PARTITIONS} non-negative integers`);
    }
    if (digests !== undefined && (typeof digests !== 'object' || digests === null || Array.isArray(digests) || Object.values(digests).some((d) => typeof d !== 'string'))) {
      throw new BadRequestError('"digests" must be {"<partition>": "<digest>", ...}');
    }
    const theirs = digests as Record<string, string> | undefined;
    const out: Record<string, Record<string, string>> = {};
    const same: number[] = [];
    // One after the other: a settled partition is a few direct file reads, and a partition that
    // needs rehashing should not have others waiting on the thread pool behind it.
    const compared = (partitions as number[]).filter((p) => theirs !== undefined && Object.hasOwn(theirs, String(p)));
    const ours = compared.length > 0 ? await this.diskfiles.getHashesDigests(dev, policy, compared) : undefined;
    for (const p of partitions as number[]) {
      const mine = ours?.get(p);
      if (mine !== undefined && mine === theirs?.[String(p)]) same.push(p);
      else out[String(p)] = await this.diskfiles.getHashes(dev, p, policy);
    }
    ctx.status = 200;
    ctx.body = theirs === undefined ? out : { same, hashes: out };
  }

  async missing(ctx: Context, device: string, partition: string): Promise<void> {
    const p = parseReplicatePath(device, partition);
    const policy = policyIndex(ctx.req.headers, this.swiftConf);
    await this.diskfiles.checkDevice(p.device);
    this.rings.get('object', policy);
    sendContinue(ctx.req, ctx.res);
    let offered: unknown;
    try {
      offered = (JSON.parse((await readBody(ctx.req, MAX_MISSING_BODY)).toString('utf8')) as { offered?: unknown }).offered;
    } catch (err) {
      throw new BadRequestError(`Invalid JSON body: ${(err as Error).message}`);
    }
    if (!Array.isArray(offered) || offered.some((f) => typeof f !== 'string')) {
      throw new BadRequestError('Body must be {"offered": ["<suffix>/<hash>/<file>", ...]}');
    }
    const wanted = await this.diskfiles.missingFiles(p.device, p.partition, policy, offered as string[]);
    ctx.status = 200;
    ctx.body = { wanted };
  }

  async receive(ctx: Context, device: string, partition: string): Promise<void> {
    const p = parseReplicatePath(device, partition);
    const policy = policyIndex(ctx.req.headers, this.swiftConf);
    await this.diskfiles.checkDevice(p.device);
    const ring = this.rings.get('object', policy);
    // The replicator may gzip the tar (small files: tar headers and padding cost more than the
    // data); anything else that is encoded is refused before a byte is read.
    const encoding = (ctx.get('Content-Encoding') || 'identity').trim().toLowerCase();
    if (encoding !== 'identity' && encoding !== 'gzip') throw new BadRequestError(`unsupported Content-Encoding "${encoding}"`);
    // Suffixes to rehash once the push is published (the sender's recalculating REPLICATE, folded
    // into this request): checked before a byte of the body is read.
    const { suffixes } = parseReplicatePath(device, partition, ctx.get('X-Recalculate-Suffixes') || undefined);
    sendContinue(ctx.req, ctx.res);
    // Output in 256 KiB pieces: zlib makes one thread-pool job per piece.
    const body = encoding === 'gzip' ? pipeline(ctx.req, createGunzip({ chunkSize: 256 * 1024 }), () => undefined) : ctx.req;
    const result = await this.diskfiles.receiveTar(p.device, p.partition, policy, body, {
      maxEntryBytes: this.config.maxSyncEntryBytes,
      partPower: ring.partPower,
    });
    ctx.status = 200;
    ctx.body = suffixes.length > 0 ? { ...result, hashes: await this.diskfiles.getHashes(p.device, p.partition, policy, { recalculate: suffixes }) } : result;
  }
}
