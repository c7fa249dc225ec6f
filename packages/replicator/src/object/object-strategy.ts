/**
 * The object replication strategy (Swift's object replicator over the tar push): plugged into the
 * generic ReplicationEngine.
 *
 * Jobs: one per partition folder of every local device and storage policy. A device is local when
 * its ring entry's replication ip/port are this node's (`bind_ip`/`bind_port`).
 * Primary partition (`update`): compare suffix hashes with each other primary, rehash what
 * differs, push what still differs (missing check, then a tar of only the wanted files), then
 * ask the peer to recalculate those suffixes. A 507 peer is replaced by the next handoff.
 * Handoff partition (`revert`): push every suffix to every primary, then remove exactly the files
 * every primary (or `handoff_delete` of them) holds; anything written meanwhile stays.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { StoreError, type Logger, type SwiftConf } from '@swiftlet/common';
import type { DiskFileManager } from '@swiftlet/diskfile';
import { Ring, type RingDevice, type RingNode } from '@swiftlet/ring';
import type { CollectContext, JobContext, ReplicationJob, ReplicationStrategy } from '../engine/replication-engine.js';
import { fisherYates } from '../engine/replication-engine.js';
import type { ReplicationStats } from '../engine/replication-stats.js';
import { isLocalDevice, localAddresses } from './local-ips.js';
import { RemoteHashesPrefetch } from './hashes-prefetch.js';
import { isPushableFile, PeerClient, PeerUnavailableError, type PeerTarget } from './peer-client.js';
import type { ObjectReplicatorConfig } from './config.js';
import { BandwidthLimiter } from './bandwidth-limit.js';

export interface ObjectJob extends ReplicationJob {
  policyIndex: number;
  ring: Ring;
  localDev: RingDevice;
  /** The other primaries (all primaries for a handoff job). */
  nodes: RingNode[];
}

interface RingFileState {
  file: string;
  mtimeMs: number;
  size: number;
  md5: string;
}

export interface ObjectStrategyOptions {
  config: ObjectReplicatorConfig;
  swiftConf: SwiftConf;
  diskFiles: DiskFileManager;
  logger: Logger;
}

const SUFFIX_RE = /^[0-9a-f]{3}$/;

function toTarget(node: RingDevice): PeerTarget {
  return { ip: node.replicationIp, port: node.replicationPort, device: node.device };
}

function peerName(node: RingDevice): string {
  return `${node.replicationIp}:${node.replicationPort}/${node.device}`;
}

async function fileState(file: string): Promise<RingFileState> {
  const [st, bytes] = await Promise.all([stat(file), readFile(file)]);
  return { file, mtimeMs: st.mtimeMs, size: st.size, md5: createHash('md5').update(bytes).digest('hex') };
}

/** A primary job begins (Swift's `attempted` and statsd `partition.update.count.<device>`). */
function countAttempt(job: ObjectJob, stats: ReplicationStats): void {
  stats.inc('attempted');
  stats.inc(`partition.update.count.${job.device}`);
}

/** A peer found in sync by its digest. */
function countDigestMatch(stats: ReplicationStats): void {
  stats.inc('digest_match');
  stats.inc('hashmatch');
  stats.inc('success');
}

export class ObjectReplicationStrategy implements ReplicationStrategy<ObjectJob> {
  readonly kind = 'object';
  private readonly peers: PeerClient;
  private ringFiles: RingFileState[] = [];
  private readonly config: ObjectReplicatorConfig;
  private readonly dfm: DiskFileManager;
  private readonly swiftConf: SwiftConf;
  private readonly logger: Logger;

  constructor(opts: ObjectStrategyOptions) {
    this.config = opts.config;
    this.dfm = opts.diskFiles;
    this.swiftConf = opts.swiftConf;
    this.logger = opts.logger;
    const c = opts.config;
    this.peers = new PeerClient(
      { connTimeoutMs: c.connTimeoutMs, httpTimeoutMs: c.httpTimeoutMs, nodeTimeoutMs: c.nodeTimeoutMs, syncTimeoutMs: c.syncTimeoutMs },
      c.maxBytesPerSecond > 0 ? new BandwidthLimiter(c.maxBytesPerSecond) : undefined,
    );
  }

  describeJob(job: ObjectJob): Record<string, unknown> {
    return { device: job.device, partition: job.partition, policy: job.policyIndex, handoff: job.handoff };
  }

  async ringChanged(): Promise<boolean> {
    for (const r of this.ringFiles) {
      let now: RingFileState;
      try {
        const st = await stat(r.file);
        if (st.mtimeMs === r.mtimeMs && st.size === r.size) continue;
        now = await fileState(r.file);
      } catch {
        return true; // the ring file went away or is being replaced
      }
      if (now.md5 !== r.md5) return true;
    }
    return false;
  }

  async collectJobs(ctx: CollectContext): Promise<ObjectJob[]> {
    const { config } = this;
    const addresses = localAddresses(config.bindIp);
    const jobs: ObjectJob[] = [];
    const ringFiles: RingFileState[] = [];
    const policies = this.swiftConf.policies.filter(
      (p) => !ctx.overrides.policies?.length || ctx.overrides.policies.includes(p.index),
    );
    for (const policy of policies) {
      let ring: Ring;
      try {
        ring = Ring.forKind(config.swiftDir, 'object', policy.index, { reloadTimeS: 1e9 });
        ringFiles.push(await fileState(ring.file));
      } catch (err) {
        ctx.logger.error({ err, policy: policy.index }, `cannot load the object ring of policy ${policy.index}; skipping it`);
        continue;
      }
      if (ring.nextPartPower !== undefined) {
        ctx.logger.warn({ policy: policy.index }, 'policy is being relinked (next_part_power set); skipping it');
        continue;
      }
      const localDevs = ring.devices.filter((d): d is RingDevice => d !== null && isLocalDevice(addresses, config.bindPort, d));
      if (localDevs.length === 0) {
        ctx.logger.error(
          { policy: policy.index, bindIp: config.bindIp, bindPort: config.bindPort },
          `can't find itself in policy ${policy.index}'s ring (bind_ip ${config.bindIp}, bind_port ${config.bindPort})`,
        );
        continue;
      }
      for (const dev of localDevs) {
        if (ctx.overrides.devices?.length && !ctx.overrides.devices.includes(dev.device)) continue;
        jobs.push(...(await this.collectDeviceJobs(ring, dev, policy.index, ctx)));
      }
    }
    this.ringFiles = ringFiles;
    return jobs;
  }

  private async collectDeviceJobs(ring: Ring, dev: RingDevice, policyIndex: number, ctx: CollectContext): Promise<ObjectJob[]> {
    const { config, dfm } = this;
    const log = ctx.logger.child({ device: dev.device, policy: policyIndex });
    try {
      await dfm.checkDevice(dev.device);
    } catch (err) {
      log.warn({ err: (err as Error).message }, `skipping device ${dev.device}: not available`);
      ctx.stats.failure(dev.replicationIp, dev.device);
      return [];
    }
    try {
      const removed = await dfm.cleanupTmp(dev.device, config.reclaimAgeS);
      if (removed > 0) log.info({ removed }, 'removed old temp files');
    } catch (err) {
      log.error({ err }, 'could not clean the tmp folder');
    }
    const objectsDir = dirname(dfm.partitionPath(dev.device, policyIndex, 0));
    let entries;
    try {
      entries = await readdir(objectsDir, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const jobs: ObjectJob[] = [];
    for (const e of entries) {
      if (!/^\d+$/.test(e.name)) continue;
      const partition = Number(e.name);
      if (!e.isDirectory()) {
        // A file where a partition folder belongs would make every write into it fail.
        log.warn({ partition }, `removing stray file ${join(objectsDir, e.name)} where a partition folder belongs`);
        await unlink(join(objectsDir, e.name)).catch((err: unknown) => log.error({ err }, 'could not remove stray file'));
        continue;
      }
      if (partition >= ring.partCount) {
        log.warn({ partition }, `partition ${partition} is outside the ring (part power ${ring.partPower}); leaving it`);
        continue;
      }
      if (ctx.overrides.partitions?.length && !ctx.overrides.partitions.includes(partition)) continue;
      const primaries = ring.getPartNodes(partition);
      const isPrimary = primaries.some((n) => n.id === dev.id);
      jobs.push({
        device: dev.device,
        partition,
        handoff: !isPrimary,
        policyIndex,
        ring,
        localDev: dev,
        nodes: primaries.filter((n) => n.id !== dev.id),
      });
    }
    return jobs;
  }

  async jobStillValid(job: ObjectJob, ctx: JobContext): Promise<boolean> {
    try {
      await this.dfm.checkDevice(job.device);
      return true;
    } catch (err) {
      ctx.logger.warn({ err: (err as Error).message }, `device ${job.device} no longer available; skipping partition`);
      ctx.stats.failure(job.localDev.replicationIp, job.device);
      return false;
    }
  }

  private partitionDir(job: ObjectJob): string {
    return this.dfm.partitionPath(job.device, job.policyIndex, job.partition);
  }

  /** Every surviving, pushable file of these suffixes, as `<suffix>/<hash>/<file>`. */
  private async offeredFiles(job: ObjectJob, suffixes: string[]): Promise<string[]> {
    const out: string[] = [];
    for await (const h of this.dfm.listSuffixFiles(job.device, job.partition, job.policyIndex, suffixes)) {
      for (const f of h.files) {
        const rel = `${h.suffix}/${h.hash}/${f}`;
        if (isPushableFile(rel)) out.push(rel);
      }
    }
    return out;
  }

  /**
   * Missing check then tar push to one peer, which rehashes `suffixes` after publishing it.
   * Returns the offered files the peer now holds, and whether a recalculation is still owed: a
   * peer that wanted nothing has nothing to recalculate, and one that answered the push with its
   * hashes has done it.
   */
  private async sync(
    job: ObjectJob,
    node: RingNode,
    suffixes: string[],
    ctx: JobContext,
    opts: { listed?: string[]; peerLacksSuffixes?: boolean } = {},
  ): Promise<{ inSync: string[]; recalculationOwed: boolean }> {
    const target = toTarget(node);
    const offered = opts.listed ?? (await this.offeredFiles(job, suffixes));
    ctx.progress();
    if (offered.length === 0) return { inSync: [], recalculationOwed: false };
    let wanted = offered;
    if (opts.peerLacksSuffixes) {
      // Beyond Swift: the peer's hashes have none of these suffixes (a wiped device, a new
      // partition), so it wants every file: the missing check's round trip and the peer's
      // lookups are saved. The receiver still skips a file it has (one pushed meanwhile by
      // another primary), so this costs bytes at worst, never correctness.
      ctx.stats.inc('missing_check_skipped');
    } else {
      wanted = await this.peers.missing(target, job.partition, job.policyIndex, offered, ctx.signal);
      ctx.progress();
      // Request and answer bodies of the missing check (headers not counted).
      ctx.stats.inc('control_bytes', JSON.stringify({ offered }).length + JSON.stringify({ wanted }).length);
    }
    ctx.stats.inc('rsync');
    if (wanted.length === 0) return { inSync: offered, recalculationOwed: false };
    const { sent, bytes, recalculated } = await this.peers.push(
      target,
      job.partition,
      job.policyIndex,
      this.partitionDir(job),
      wanted,
      ctx.signal,
      () => ctx.progress(),
      { compress: await this.shouldCompress(job, wanted), recalculate: suffixes },
    );
    ctx.stats.inc('bytes_sent', bytes);
    ctx.stats.inc('files_sent', sent.length);
    const sentSet = new Set(sent);
    const wantedSet = new Set(wanted);
    return { inSync: offered.filter((f) => !wantedSet.has(f) || sentSet.has(f)), recalculationOwed: !recalculated };
  }

  /**
   * After a failed push, or one whose answer carried no hashes, the peer is asked to rehash the
   * suffixes so that its next answer reflects what it got. Swift asks after every rsync; a peer
   * that wanted none of our files got nothing, and is not asked (its own pass rehashes a suffix
   * that differs).
   */
  private async recalculate(job: ObjectJob, node: RingNode, suffixes: string[], ctx: JobContext): Promise<void> {
    await this.peers.replicate(toTarget(node), job.partition, job.policyIndex, suffixes, ctx.signal);
    ctx.progress();
  }

  /**
   * Swift's `update`, with the peers handled at once instead of one after the other: their hashes
   * are fetched together (and with the local ones), suffixes that differ from a peer holding
   * them are rehashed locally once, then each peer gets its push. A peer answering 507 is replaced
   * by the next handoff; any other failure is counted and the others go on.
   */
  /** sync_compress auto: gzip when the files are small (tar's 512-byte blocks dominate). */
  private async shouldCompress(job: ObjectJob, wanted: string[]): Promise<boolean> {
    const mode = this.config.syncCompress;
    if (mode !== 'auto') return mode === 'yes';
    // Direct lookups: sixteen thread-pool jobs per push cost more than the stats themselves.
    const sizes = wanted.slice(0, 16).map((f) => statSync(join(this.partitionDir(job), f), { throwIfNoEntry: false })?.size ?? 0);
    return sizes.reduce((a, b) => a + b, 0) / Math.max(1, sizes.length) < 64 * 1024;
  }

  /** The current pass's peers' hashes, fetched in batches ahead of the jobs (hashes-prefetch.ts). */
  private prefetch: RemoteHashesPrefetch | undefined;

  jobsOrdered(jobs: readonly ObjectJob[], signal: AbortSignal, logger: Logger): void {
    const localDigests = async (window: readonly ObjectJob[]): Promise<Map<ObjectJob, string>> => {
      const out = new Map<ObjectJob, string>();
      const byDevice = new Map<string, ObjectJob[]>();
      for (const job of window) {
        const key = `${job.device}|${job.policyIndex}`;
        const group = byDevice.get(key);
        if (group) group.push(job);
        else byDevice.set(key, [job]);
      }
      for (const group of byDevice.values()) {
        const first = group[0] as ObjectJob;
        try {
          const digests = await this.dfm.getHashesDigests(first.device, first.policyIndex, group.map((j) => j.partition));
          for (const job of group) out.set(job, digests.get(job.partition) as string);
        } catch (err) {
          logger.debug({ device: first.device, err: (err as Error).message }, 'local digests unreadable; peers send hashes');
        }
      }
      return out;
    };
    this.prefetch = this.config.batchReplicate ? new RemoteHashesPrefetch(this.peers, jobs, toTarget, signal, logger, localDigests) : undefined;
  }

  alreadyInSync(job: ObjectJob, stats: ReplicationStats): boolean {
    // No device check as jobStillValid makes: nothing here touches the device, whose check came
    // with the read of our digests for the window.
    if (!this.prefetch?.inSync(job)) return false;
    // The counts replicatePrimary makes for a job whose peers all answered "same".
    countAttempt(job, stats);
    for (let i = 0; i < job.nodes.length; i++) {
      stats.inc('remote_hashes_batched');
      countDigestMatch(stats);
    }
    return true;
  }

  async replicatePrimary(job: ObjectJob, ctx: JobContext): Promise<void> {
    const { stats } = ctx;
    countAttempt(job, stats);
    const peers = fisherYates([...job.nodes]);
    const tried = new Set<number>([job.localDev.id, ...peers.map((p) => p.id)]);
    const handoffs = job.ring.getMoreNodes(job.partition);
    const nextHandoff = (): RingNode | undefined => {
      for (;;) {
        const r = handoffs.next();
        if (r.done) return undefined;
        if (!tried.has(r.value.id)) {
          tried.add(r.value.id);
          return r.value;
        }
      }
    };
    /** `batched`: the answer came from the pass's prefetch (hashes-prefetch.ts), not asked now. */
    type Answer = { node: RingNode; remote?: Record<string, string>; same?: string; err?: unknown; batched?: boolean };
    /** A peer that said what it holds. */
    type Holding = { node: RingNode; remote: Record<string, string>; batched?: boolean };
    const ask = async (node: RingNode): Promise<Answer> => {
      const fetched = await this.prefetch?.take(job, node);
      if (fetched !== undefined) {
        ctx.stats.inc('remote_hashes_batched');
        if ('same' in fetched) return { node, same: fetched.same };
        ctx.stats.inc('control_bytes', JSON.stringify(fetched.hashes).length);
        return { node, remote: fetched.hashes, batched: true };
      }
      return askDirect(node);
    };
    const askDirect = (node: RingNode): Promise<Answer> =>
      this.peers.replicate(toTarget(node), job.partition, job.policyIndex, undefined, ctx.signal).then(
        (remote) => {
          ctx.stats.inc('control_bytes', JSON.stringify(remote).length);
          return { node, remote };
        },
        (err: unknown) => ({ node, err }),
      );
    /** A peer that could not say what it holds: counted, logged; a 507 puts the next handoff in `next`. */
    const failedAsk = (r: Answer, next: RingNode[]): void => {
      stats.failure(r.node.replicationIp, r.node.device);
      const log = ctx.logger.child({ peer: peerName(r.node) });
      if (r.err instanceof PeerUnavailableError) {
        const extra = nextHandoff();
        log.warn(
          { next: extra ? peerName(extra) : undefined },
          extra ? `peer answered 507; trying handoff ${peerName(extra)}` : 'peer answered 507; ran out of handoffs',
        );
        if (extra) next.push(extra);
      } else {
        log.error({ err: errText(r.err) }, `replication of partition ${job.partition} to ${peerName(r.node)} failed`);
      }
    };
    const syncedRegions = new Set<number>();
    let round = peers;
    // Without digests the local hashes are read while the peers answer; with them, only when a
    // peer's answer is not "same" (an in-sync partition never reads its suffix hashes).
    const readLocal = (): Promise<Record<string, string>> => this.dfm.getHashes(job.device, job.partition, job.policyIndex);
    let localRead = this.prefetch ? undefined : readLocal();
    localRead?.catch(() => undefined);
    let answers = round.map(ask);
    let local: Record<string, string> | undefined;
    while (round.length > 0) {
      // "Same" is for our digest when the window was asked, moments ago in this pass: a change
      // since then waits for the next pass, as one made after Swift's REPLICATE does.
      const results = await Promise.all(answers);
      if (ctx.signal.aborted) throw ctx.signal.reason as Error;
      ctx.progress();
      const next: RingNode[] = [];
      const ok: Holding[] = [];
      for (const r of results) {
        if (r.same !== undefined) {
          countDigestMatch(stats);
          continue;
        }
        if (r.remote) {
          ok.push({ node: r.node, remote: r.remote, ...(r.batched ? { batched: true } : {}) });
          continue;
        }
        failedAsk(r, next);
      }
      if (ok.length === 0) {
        round = next;
        answers = round.map(ask);
        continue;
      }
      if (local === undefined) {
        local = await (localRead ?? (localRead = readLocal()));
        ctx.progress();
        stats.inc('suffix_count', Object.keys(local).length);
      }
      // The cached local hash may be stale: rehash, once, every suffix a peer holds differently
      // before moving any data. A suffix the peer lacks altogether needs no rehash to be pushed.
      const recheck = new Set<string>();
      for (const { remote } of ok) {
        for (const s of Object.keys(local)) if (remote[s] !== undefined && local[s] !== remote[s]) recheck.add(s);
      }
      if (recheck.size > 0) {
        local = await this.dfm.getHashes(job.device, job.partition, job.policyIndex, { recalculate: [...recheck] });
        ctx.progress();
        stats.inc('suffix_hash', recheck.size);
      }
      const current = local;
      // Peers of the local region at once; the peers of one remote region one after the other,
      // stopping at the first success: one sync per remote region per pass, the receiving region
      // spreads it (Swift).
      const groups = new Map<string, Holding[]>();
      for (const o of ok) {
        const key = o.node.region === job.localDev.region ? `local-${o.node.id}` : `region-${o.node.region}`;
        groups.set(key, [...(groups.get(key) ?? []), o]);
      }
      const syncOne = async ({ node, remote, batched }: Holding): Promise<void> => {
        if (node.region !== job.localDev.region && syncedRegions.has(node.region)) return;
        let peerHashes = remote;
        let suffixes = Object.keys(current).filter((s) => current[s] !== remote[s]);
        if (suffixes.length > 0 && batched) {
          // A batch's answer may predate another primary's push to this peer in this same pass
          // (a wiped device is refilled by both of its peers): ask it again, one small request,
          // before both sides list every object of the partition for the missing check.
          const fresh = await askDirect(node);
          if (ctx.signal.aborted) throw ctx.signal.reason as Error;
          ctx.progress();
          if (!fresh.remote) {
            // As a failed first ask: a 507 hands the partition to the next handoff (next round).
            failedAsk(fresh, next);
            return;
          }
          peerHashes = fresh.remote;
          stats.inc('remote_hashes_refreshed');
          suffixes = Object.keys(current).filter((s) => current[s] !== peerHashes[s]);
        }
        if (suffixes.length === 0) {
          stats.inc('hashmatch');
          stats.inc('success');
          return;
        }
        try {
          let syncErr: unknown;
          let recalculationOwed = true;
          try {
            const peerLacksSuffixes = suffixes.every((s) => peerHashes[s] === undefined);
            ({ recalculationOwed } = await this.sync(job, node, suffixes, ctx, { peerLacksSuffixes }));
            stats.inc('suffix_sync', suffixes.length);
          } catch (err) {
            syncErr = err;
          }
          // What it got, or may have partly got.
          if (recalculationOwed) await this.recalculate(job, node, suffixes, ctx);
          if (syncErr) throw syncErr;
          if (node.region !== job.localDev.region) syncedRegions.add(node.region);
          stats.inc('success');
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          stats.failure(node.replicationIp, node.device);
          ctx.logger.error(
            { peer: peerName(node), err: errText(err) },
            `replication of partition ${job.partition} to ${peerName(node)} failed`,
          );
        }
      };
      await Promise.all(
        [...groups.values()].map(async (group) => {
          for (const o of group) await syncOne(o);
        }),
      );
      round = next;
      answers = round.map(ask);
    }
  }

  async revertHandoff(job: ObjectJob, ctx: JobContext): Promise<boolean> {
    const { stats } = ctx;
    stats.inc('attempted');
    stats.inc(`partition.delete.count.${job.device}`); // Swift's statsd name
    const dir = this.partitionDir(job);
    let suffixes: string[];
    try {
      suffixes = (await readdir(dir)).filter((n) => SUFFIX_RE.test(n));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return true;
      throw err;
    }
    stats.inc('suffix_count', suffixes.length);
    // Listed once for every primary: a file written after this listing is offered to none, so
    // it can never be removed unpushed.
    const offered = suffixes.length > 0 ? await this.offeredFiles(job, suffixes) : [];
    if (offered.length === 0) {
      const { kept } = await this.dfm.removePushed(job.device, job.partition, job.policyIndex, []);
      if (kept === 0) {
        ctx.logger.info(`removing empty handoff partition ${dir}`);
        stats.inc('remove');
        return true;
      }
      // Something was written while we looked: push it next time.
      return false;
    }
    const required = this.config.handoffDelete > 0 ? Math.min(this.config.handoffDelete, job.nodes.length) : job.nodes.length;
    const inSyncCount = new Map<string, number>();
    let successes = 0;
    // Unlike Swift's one-sync-per-remote-region, every primary gets the push (all at once): the
    // missing check makes a redundant one cheap, and only files confirmed on enough primaries are
    // removed.
    await Promise.all(
      job.nodes.map(async (node) => {
        try {
          const { inSync, recalculationOwed } = await this.sync(job, node, suffixes, ctx, { listed: offered });
          stats.inc('suffix_sync', suffixes.length);
          if (recalculationOwed) await this.recalculate(job, node, suffixes, ctx);
          for (const f of inSync) inSyncCount.set(f, (inSyncCount.get(f) ?? 0) + 1);
          successes++;
          stats.inc('success');
        } catch (err) {
          if (ctx.signal.aborted) throw err;
          stats.failure(node.replicationIp, node.device);
          ctx.logger.error(
            { peer: peerName(node), err: errText(err) },
            `revert of handoff partition ${job.partition} to ${peerName(node)} failed`,
          );
        }
      }),
    );
    if (successes < required || job.nodes.length === 0) {
      ctx.logger.info({ successes, required }, `keeping handoff partition ${dir}: not enough primaries have it yet`);
      return false;
    }
    const removable = [...inSyncCount].filter(([, n]) => n >= required).map(([f]) => f);
    const { removed, kept } = await this.dfm.removePushed(job.device, job.partition, job.policyIndex, removable);
    ctx.progress();
    ctx.logger.info({ removed, kept }, `${kept === 0 ? 'Removing partition' : 'Removed pushed files of partition'}: ${dir}`);
    if (kept === 0) stats.inc('remove');
    return kept === 0;
  }
}

function errText(err: unknown): string {
  if (err instanceof StoreError || err instanceof Error) return err.message;
  return String(err);
}

