/**
 * The global bucket registry. S3 bucket names are global, but each Swiftlet account keeps its
 * buckets as containers of its own. So the gateway records every bucket's owner in a reserved
 * account that no user can reach (its name starts with "."; credentials refuse such accounts):
 *
 *   account   <bucket_registry_account>   (default ".s3_buckets")
 *   container "buckets"
 *   object    "<bucket name>"  — empty body, `X-Object-Meta-Owner: <account>`
 *
 * Everything goes through the ordinary data path, so the registry is replicated like any object.
 * A claim is a PUT with `If-None-Match: *` (an object server already holding a row refuses it,
 * and the data path answers 412 if any replica refused), then a read-back of the owner.
 * Claims so close together that both pass If-None-Match are decided by Swift's last-writer-wins:
 * the newest row wins everywhere, so the creator checks the owner once more after creating its
 * container and withdraws (deletes the still empty container) if another claim overtook it. A crash
 * between the claim and the container PUT leaves a row whose owner can still create (or delete)
 * the bucket; no one else can take it.
 */
import type { Logger } from '@swiftlet/common';
import { S3Error } from './s3-error.js';
import type { S3Storage } from './storage.js';

export const REGISTRY_CONTAINER = 'buckets';

export class BucketRegistry {
  private ready: Promise<void> | undefined;

  constructor(
    private readonly storage: S3Storage,
    readonly account: string,
    private readonly logger: Logger,
  ) {}

  /** Creates the registry account and container once (again after a failure). */
  private ensure(): Promise<void> {
    this.ready ??= (async () => {
      const head = await this.storage.headContainer(this.account, REGISTRY_CONTAINER);
      if (head.status >= 200 && head.status < 300) return;
      const acc = await this.storage.headAccount(this.account);
      if (acc.status === 404) {
        const r = await this.storage.putAccount(this.account);
        if (r.status >= 300) throw unavailable(`registry account PUT answered ${r.status}`);
      } else if (acc.status >= 300) throw unavailable(`registry account HEAD answered ${acc.status}`);
      const c = await this.storage.putContainer(this.account, REGISTRY_CONTAINER);
      if (c.status >= 300) throw unavailable(`registry container PUT answered ${c.status}`);
      this.logger.info({ account: this.account }, 'bucket registry created');
    })().catch((err: unknown) => {
      this.ready = undefined;
      throw err;
    });
    return this.ready;
  }

  /** The account owning `bucket`, or undefined if no one does. */
  async owner(bucket: string): Promise<string | undefined> {
    await this.ensure();
    const r = await this.storage.headObject(this.account, REGISTRY_CONTAINER, bucket);
    if (r.status === 404) return undefined;
    if (r.status < 200 || r.status >= 300) throw unavailable(`registry HEAD answered ${r.status}`);
    return r.headers['x-object-meta-owner'];
  }

  /** Records `account` as the owner if no one holds the name; true if this claim won. */
  async claim(bucket: string, account: string): Promise<boolean> {
    await this.ensure();
    const r = await this.storage.putObject(this.account, REGISTRY_CONTAINER, bucket, Buffer.alloc(0), {
      'Content-Length': '0',
      'Content-Type': 'application/x-swiftlet-bucket',
      'X-Object-Meta-Owner': account,
      'If-None-Match': '*',
    });
    if (r.status === 412) return false;
    if (r.status < 200 || r.status >= 300) throw unavailable(`registry PUT answered ${r.status}`);
    // Simultaneous claims can all pass If-None-Match; the newest row wins everywhere.
    return (await this.owner(bucket)) === account;
  }

  /** Forgets the bucket, but only if `account` still owns it. */
  async release(bucket: string, account: string): Promise<void> {
    const current = await this.owner(bucket);
    if (current !== account) return;
    const r = await this.storage.deleteObject(this.account, REGISTRY_CONTAINER, bucket);
    if (r.status >= 300 && r.status !== 404) throw unavailable(`registry DELETE answered ${r.status}`);
  }
}

function unavailable(why: string): S3Error {
  return new S3Error('ServiceUnavailable', 'Please reduce your request rate.', { cause: new Error(why) });
}
