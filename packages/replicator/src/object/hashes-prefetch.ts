/**
 * Peers' suffix hashes fetched ahead of the jobs that need them, many partitions per request
 * (beyond Swift, whose replicator sends one REPLICATE per partition and peer). In an in-sync pass
 * nearly every job ends at "the hashes match", so its cost is the round trips: batching them turns
 * 2 requests per partition into 2 per `window` partitions.
 *
 * The pass's jobs are taken in the order they will run and cut into windows; the first job of a
 * window to ask starts the requests for that window and the next one (one request per peer device
 * and policy). An answer is used once, by the job it was fetched for, and may be a little older
 * than a REPLICATE made at that moment: that is harmless, since a job only pushes what the peer's
 * missing check says it lacks, and the peer's own changes are pushed by the peer's replicator.
 * Anything that goes wrong with a batch (peer down, 507, an older server without the batch route)
 * leaves its partitions to the per-partition REPLICATE, which handles each case as before.
 *
 * With `localDigests`, each request carries the digest of our suffix hashes for every partition of
 * the window, and the peer answers "same" for those it holds identically (hash-cache.ts,
 * hashesDigest): an in-sync partition then costs one small file read on each side and a few bytes
 * on the wire, however many suffixes it has. Our digest is read when the window is asked, so a
 * change to the partition after that waits for the next pass (re-reading it when the job runs cost
 * a tenth of an in-sync pass's CPU).
 */
import type { Logger } from '@swiftlet/common';
import type { RingNode } from '@swiftlet/ring';
import type { ObjectJob } from './object-strategy.js';
import type { BatchedHashes, PeerClient, PeerTarget } from './peer-client.js';

export const PREFETCH_WINDOW = 256;

type Answer = BatchedHashes | undefined;

export class RemoteHashesPrefetch {
  private readonly positions = new Map<ObjectJob, number>();
  private readonly answers = new Map<string, Promise<Answer>>();
  /** The answers whose batch has come back, by the same key (read by inSync without waiting). */
  private readonly arrived = new Map<string, Answer>();
  private readonly requested = new Set<number>();
  /** Primary jobs only (handoff jobs push everything and ask no hashes first). */
  private readonly order: ObjectJob[];

  constructor(
    private readonly peers: PeerClient,
    jobsInRunOrder: readonly ObjectJob[],
    private readonly target: (node: RingNode) => PeerTarget,
    private readonly signal: AbortSignal,
    private readonly logger: Logger,
    /** Our digests of these jobs' partitions, sent with the requests (undefined: hashes only). */
    private readonly localDigests?: (jobs: readonly ObjectJob[]) => Promise<Map<ObjectJob, string>>,
    private readonly window = PREFETCH_WINDOW,
  ) {
    this.order = jobsInRunOrder.filter((j) => !j.handoff);
    this.order.forEach((job, i) => this.positions.set(job, i));
  }

  private key(node: RingNode, job: ObjectJob): string {
    const t = this.target(node);
    return `${t.ip}:${t.port}/${t.device}|${job.policyIndex}|${job.partition}`;
  }

  /**
   * The peer's answer for this job's partition from a batch (its hashes, or "same as our digest
   * then"), or undefined: ask the peer directly.
   */
  take(job: ObjectJob, node: RingNode): Promise<Answer> {
    if (!this.requestFor(job)) return Promise.resolve(undefined);
    const key = this.key(node, job);
    const answer = this.answers.get(key);
    this.answers.delete(key);
    this.arrived.delete(key);
    return answer ?? Promise.resolve(undefined);
  }

  /**
   * True when every peer of this job has already answered "same" in a batch that is back: the
   * partition is in sync and the job has nothing to do (its answers are used up). False: run the
   * job, which takes its answers as usual. An in-sync pass is nearly all such jobs, and this
   * spares each of them the job's machinery (timers, abort signals, promises).
   */
  inSync(job: ObjectJob): boolean {
    if (!this.requestFor(job)) return false;
    const keys = job.nodes.map((node) => this.key(node, job));
    for (const key of keys) {
      const a = this.arrived.get(key);
      if (a === undefined || !('same' in a)) return false;
    }
    for (const key of keys) {
      this.answers.delete(key);
      this.arrived.delete(key);
    }
    return true;
  }

  /** Starts the requests for the job's window and the next; false for a job not fetched ahead. */
  private requestFor(job: ObjectJob): boolean {
    const pos = this.positions.get(job);
    if (pos === undefined) return false;
    const w = Math.floor(pos / this.window);
    this.request(w);
    this.request(w + 1);
    return true;
  }

  private request(w: number): void {
    if (this.requested.has(w) || this.signal.aborted) return;
    const jobs = this.order.slice(w * this.window, (w + 1) * this.window);
    if (jobs.length === 0) return;
    this.requested.add(w);
    const groups = new Map<string, { target: PeerTarget; policy: number; members: { job: ObjectJob; node: RingNode }[] }>();
    for (const job of jobs) {
      for (const node of job.nodes) {
        const target = this.target(node);
        const g = `${target.ip}:${target.port}/${target.device}|${job.policyIndex}`;
        let group = groups.get(g);
        if (!group) groups.set(g, (group = { target, policy: job.policyIndex, members: [] }));
        group.members.push({ job, node });
      }
    }
    // Our digests for the window, read once for all of its peers; jobs whose digests cannot be
    // read are sent without them (their peers then answer with their hashes).
    const digests = this.localDigests?.(jobs).catch((err: unknown) => {
      this.logger.debug({ err: (err as Error).message }, 'local digests unreadable; peers send hashes');
      return new Map<ObjectJob, string>();
    });
    for (const { target, policy, members } of groups.values()) {
      const batch = (async () => {
        const mine = await digests;
        let byPartition: Map<number, string> | undefined;
        if (mine) {
          byPartition = new Map();
          for (const { job } of members) {
            const digest = mine.get(job);
            if (digest !== undefined) byPartition.set(job.partition, digest);
          }
        }
        return this.peers.replicateMany(target, policy, members.map((m) => m.job.partition), this.signal, byPartition);
      })()
        .catch((err: unknown) => {
          this.logger.debug(
            { peer: `${target.ip}:${target.port}/${target.device}`, err: (err as Error).message },
            'batched REPLICATE failed; those partitions ask one by one',
          );
          return undefined;
        });
      for (const { job, node } of members) {
        const key = this.key(node, job);
        this.answers.set(
          key,
          batch.then((m) => {
            const answer = m?.get(job.partition);
            // Only while the answer is still unused (take deletes it first if the job got there).
            if (answer !== undefined && this.answers.has(key)) this.arrived.set(key, answer);
            return answer;
          }),
        );
      }
    }
  }
}
