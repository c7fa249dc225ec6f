/**
 * Multipart uploads on a whole cluster: parts as objects of the hidden `<bucket>+segments`
 * container, a manifest object in the bucket, streamed and ranged reads, the janitor.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  UploadPartCommand,
  UploadPartCopyCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, errorCode, rawRequest, s3Client, startS3Cluster, STORAGE_DOMAIN, type S3Cluster } from '../s3/helpers.js';
import { eventually, SeededBytes, storedFiles, storedNames } from './helpers.js';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const EXPIRY_S = 30;

async function bodyBytes(body: unknown): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks);
}

function md5(b: Buffer): string {
  return createHash('md5').update(b).digest('hex');
}

async function s3Code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (err) {
    return (err as { name?: string; Code?: string }).Code ?? (err as Error).name;
  }
  return 'no error';
}

describe('S3 multipart uploads', () => {
  let s3: S3Cluster;
  let c: S3Client;
  let work: string;
  const bucket = 'mpu';
  const segmentsPrefix = `/${ALICE.account}/${bucket}+segments/`;
  let abandonedId = '';

  const partsOf = async (key: string, uploadId: string): Promise<string[]> =>
    storedNames(s3.cluster, `${segmentsPrefix}${key}/${uploadId}`);

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'swiftlet-mpu-'));
    s3 = await startS3Cluster({
      extraConf: {
        proxy: { s3api: { storage_domain: STORAGE_DOMAIN, credentials_reload_interval: 0.2, verify_buffer_size: 65536, abandoned_upload_expiry: EXPIRY_S } },
      },
    });
    c = s3Client(s3.endpoint);
    await c.send(new CreateBucketCommand({ Bucket: bucket }));
    // Left alone from now on: the janitor must remove it after EXPIRY_S (checked last).
    const up = await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'abandoned/one' }));
    abandonedId = up.UploadId!;
    await c.send(new UploadPartCommand({ Bucket: bucket, Key: 'abandoned/one', UploadId: abandonedId, PartNumber: 1, Body: Buffer.alloc(1000, 1) }));
  });
  afterAll(async () => {
    await s3?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('lib-storage Upload of 100 MiB in parallel parts, read back whole, by ranges across part boundaries and by part', { timeout: 240_000 }, async () => {
    const size = 100 * MiB;
    const partSize = 8 * MiB;
    const src = new SeededBytes('hundred');
    const up = new Upload({ client: c, params: { Bucket: bucket, Key: 'big/file.bin', Body: src.stream(size), ContentType: 'application/x-test', Metadata: { color: 'blue' } }, partSize, queueSize: 4 });
    const done = await up.done();
    const parts = Math.ceil(size / partSize);
    expect(done.ETag).toMatch(new RegExp(`^"[0-9a-f]{32}-${parts}"$`));

    const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/file.bin' }));
    expect(head.ContentLength).toBe(size);
    expect(head.ETag).toBe(done.ETag);
    expect(head.ContentType).toBe('application/x-test');
    expect(head.Metadata).toEqual({ color: 'blue' });

    // Whole body, streamed and hashed (never held).
    const whole = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/file.bin' }));
    const h = createHash('sha256');
    let got = 0;
    for await (const chunk of whole.Body as AsyncIterable<Uint8Array>) {
      h.update(chunk);
      got += chunk.length;
    }
    expect(got).toBe(size);
    expect(h.digest('hex')).toBe(src.sha256(size));

    const ranges: [number, number][] = [
      [partSize - 100, partSize + 99],          // across the 1st boundary
      [3 * partSize - 1, 5 * partSize],          // spans a whole part and two edges
      [0, 0],
      [size - 1, size - 1],
      [12 * partSize + 5, size - 1],            // inside the last part
      [7, 2 * partSize + 3],
    ];
    for (const [a, b] of ranges) {
      const res = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/file.bin', Range: `bytes=${a}-${b}` }));
      expect(res.ContentRange).toBe(`bytes ${a}-${b}/${size}`);
      const bytes = await bodyBytes(res.Body);
      expect(bytes.length).toBe(b - a + 1);
      expect(bytes.equals(src.slice(a, b - a + 1))).toBe(true);
    }
    const suffix = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/file.bin', Range: 'bytes=-1000' }));
    expect((await bodyBytes(suffix.Body)).equals(src.slice(size - 1000, 1000))).toBe(true);
    const beyond = await s3Code(c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/file.bin', Range: `bytes=${size}-` })));
    expect(beyond).toBe('InvalidRange');

    const p2 = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/file.bin', PartNumber: 2 }));
    expect(p2.$metadata.httpStatusCode).toBe(206);
    expect(p2.PartsCount).toBe(parts);
    expect(p2.ContentLength).toBe(partSize);
    expect((await bodyBytes(p2.Body)).equals(src.slice(partSize, partSize))).toBe(true);
    const headPart = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/file.bin', PartNumber: 13 }));
    expect(headPart.ContentLength).toBe(size - 12 * partSize);
    expect(headPart.PartsCount).toBe(parts);
    expect(await s3Code(c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/file.bin', PartNumber: 14 })))).toBe('InvalidPartNumber');

    // Listings: the manifest with its whole size and S3's ETag; no segments, no hidden bucket.
    const list = await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'big/' }));
    expect(list.Contents?.map((o) => [o.Key, o.Size, o.ETag])).toEqual([['big/file.bin', size, done.ETag]]);
    const buckets = await c.send(new ListBucketsCommand({}));
    expect(buckets.Buckets?.map((b) => b.Name)).toEqual([bucket]);

    // CopyObject of a multipart object: a plain object with the same bytes.
    await c.send(new CopyObjectCommand({ Bucket: bucket, Key: 'big/copy.bin', CopySource: `${bucket}/big/file.bin` }));
    const copyHead = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'big/copy.bin' }));
    expect(copyHead.ContentLength).toBe(size);
    const copied = await c.send(new GetObjectCommand({ Bucket: bucket, Key: 'big/copy.bin', Range: `bytes=${partSize - 10}-${partSize + 9}` }));
    expect((await bodyBytes(copied.Body)).equals(src.slice(partSize - 10, 20))).toBe(true);
    await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'big/copy.bin' }));
  });

  it('aws s3 cp of a 24 MiB file up (multipart by itself) and down', { timeout: 240_000 }, async () => {
    const size = 24 * MiB + 123;
    const src = new SeededBytes('cli');
    const up = join(work, 'up.bin');
    const down = join(work, 'down.bin');
    await pipeline(src.stream(size), createWriteStream(up));
    const env = {
      PATH: process.env['PATH'] ?? '/usr/bin:/bin',
      HOME: work,
      AWS_ACCESS_KEY_ID: ALICE.accessKey,
      AWS_SECRET_ACCESS_KEY: ALICE.secretKey,
      AWS_DEFAULT_REGION: 'us-east-1',
      AWS_CONFIG_FILE: join(work, 'none-config'),
      AWS_SHARED_CREDENTIALS_FILE: join(work, 'none-credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_PAGER: '',
    };
    await run('/usr/bin/aws', ['--endpoint-url', s3.endpoint, 's3', 'cp', up, `s3://${bucket}/cli/file.bin`], { env, timeout: 180_000 });
    const head = await c.send(new HeadObjectCommand({ Bucket: bucket, Key: 'cli/file.bin' }));
    expect(head.ContentLength).toBe(size);
    expect(head.ETag).toMatch(/-\d+"$/);
    await run('/usr/bin/aws', ['--endpoint-url', s3.endpoint, 's3', 'cp', `s3://${bucket}/cli/file.bin`, down], { env, timeout: 180_000 });
    expect((await stat(down)).size).toBe(size);
    const hashOf = async (f: string): Promise<string> => {
      const h = createHash('sha256');
      for await (const chunk of createReadStream(f)) h.update(chunk as Buffer);
      return h.digest('hex');
    };
    expect(await hashOf(down)).toBe(src.sha256(size));
    await unlink(up);
    await unlink(down);
  });

  it('ListParts (paged), ListMultipartUploads (prefix, delimiter, markers), abort removes the parts', async () => {
    const ids: string[] = [];
    for (const key of ['lst/a', 'lst/b', 'lst/dir/c', 'other']) {
      ids.push((await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!);
    }
    const second = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: 'lst/a' }))).UploadId!;
    const [aId] = ids as [string];
    const etags: string[] = [];
    for (const n of [1, 2, 3]) {
      const body = Buffer.alloc(1000 + n, n);
      const r = await c.send(new UploadPartCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId, PartNumber: n, Body: body }));
      expect(r.ETag).toBe(`"${md5(body)}"`);
      etags.push(r.ETag!);
    }
    const page1 = await c.send(new ListPartsCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId, MaxParts: 2 }));
    expect(page1.Parts?.map((p) => [p.PartNumber, p.ETag, p.Size])).toEqual([[1, etags[0], 1001], [2, etags[1], 1002]]);
    expect(page1.IsTruncated).toBe(true);
    expect(page1.NextPartNumberMarker).toBe('2');
    const page2 = await c.send(new ListPartsCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId, PartNumberMarker: '2' }));
    expect(page2.Parts?.map((p) => p.PartNumber)).toEqual([3]);
    expect(page2.IsTruncated).toBe(false);

    const all = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'lst/' }));
    expect(all.Uploads?.map((u) => [u.Key, u.UploadId])).toEqual([['lst/a', aId], ['lst/a', second], ['lst/b', ids[1]], ['lst/dir/c', ids[2]]]);
    const grouped = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'lst/', Delimiter: '/' }));
    expect(grouped.Uploads?.map((u) => u.Key)).toEqual(['lst/a', 'lst/a', 'lst/b']);
    expect(grouped.CommonPrefixes?.map((p) => p.Prefix)).toEqual(['lst/dir/']);
    const paged = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'lst/', MaxUploads: 1 }));
    expect(paged.IsTruncated).toBe(true);
    expect([paged.NextKeyMarker, paged.NextUploadIdMarker]).toEqual(['lst/a', aId]);
    const next = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'lst/', KeyMarker: 'lst/a', UploadIdMarker: aId }));
    expect(next.Uploads?.map((u) => u.UploadId)).toEqual([second, ids[1], ids[2]]);
    const afterKey = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'lst/', KeyMarker: 'lst/a' }));
    expect(afterKey.Uploads?.map((u) => u.Key)).toEqual(['lst/b', 'lst/dir/c']);

    expect((await partsOf('lst/a', aId)).length).toBe(3 * 3 + 3); // 3 parts + the record, 3 replicas each
    await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId }));
    expect(await partsOf('lst/a', aId)).toEqual([]);
    expect(await s3Code(c.send(new ListPartsCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId })))).toBe('NoSuchUpload');
    expect(await s3Code(c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId })))).toBe('NoSuchUpload');
    expect(await s3Code(c.send(new UploadPartCommand({ Bucket: bucket, Key: 'lst/a', UploadId: aId, PartNumber: 1, Body: 'x' })))).toBe('NoSuchUpload');
    const after = await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'lst/' }));
    expect(after.Uploads?.map((u) => u.UploadId)).toEqual([second, ids[1], ids[2]]);
    for (const [key, id] of [['lst/a', second], ['lst/b', ids[1]], ['lst/dir/c', ids[2]], ['other', ids[3]]] as [string, string][]) {
      await c.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id }));
    }
    // Nothing of an upload in progress shows in the bucket.
    expect((await c.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'lst' }))).KeyCount).toBe(0);
  });

  it('concurrent uploads of one key: the last completed wins, the loser\'s segments are removed, then the winner\'s after a delete', { timeout: 120_000 }, async () => {
    const key = 'race/obj';
    const a = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const b = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const bodyA = Buffer.alloc(5 * MiB, 0xa);
    const [pa1, pb1] = await Promise.all([
      c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: a, PartNumber: 1, Body: bodyA })),
      c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: b, PartNumber: 1, Body: Buffer.alloc(5 * MiB, 0xb) })),
    ]);
    const [pa2, pb2] = await Promise.all([
      c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: a, PartNumber: 2, Body: 'tail-a' })),
      c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: b, PartNumber: 2, Body: 'tail-b' })),
    ]);
    const doneA = await c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: a, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: pa1.ETag }, { PartNumber: 2, ETag: pa2.ETag }] } }));
    const doneB = await c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: b, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: pb1.ETag }, { PartNumber: 2, ETag: pb2.ETag }] } }));
    expect(doneA.ETag).not.toBe(doneB.ETag);
    const got = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=${5 * MiB - 2}-` }));
    expect((await bodyBytes(got.Body)).toString('latin1')).toBe('\x0b\x0btail-b');
    expect(await eventually(async () => (await partsOf(key, a)).length === 0, 30_000)).toBe(true);
    expect((await partsOf(key, b)).length).toBe(9);
    // Both completed: neither is an upload in progress any more.
    expect((await c.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: 'race/' }))).Uploads ?? []).toEqual([]);
    await c.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
    expect(await eventually(async () => (await partsOf(key, b)).length === 0, 30_000)).toBe(true);

    // Overwritten by a plain PUT: the segments go too.
    const cId = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const pc = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: cId, PartNumber: 1, Body: 'only' }));
    await c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: cId, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: pc.ETag }] } }));
    expect((await partsOf(key, cId)).length).toBe(6);
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'plain' }));
    expect(await eventually(async () => (await partsOf(key, cId)).length === 0, 30_000)).toBe(true);
    expect((await bodyBytes((await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body)).toString()).toBe('plain');
  });

  it('UploadPartCopy with x-amz-copy-source-range, from a plain and from a multipart object', async () => {
    const plain = Buffer.from('0123456789abcdefghij');
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: 'copy/src', Body: plain }));
    const key = 'copy/dst';
    const id = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const src = new SeededBytes('hundred'); // big/file.bin of the first test
    const p1 = await c.send(new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 1, CopySource: `${bucket}/big/file.bin`, CopySourceRange: `bytes=${8 * MiB - 3 * MiB}-${8 * MiB + 3 * MiB - 1}` }));
    const p2 = await c.send(new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 2, CopySource: `${bucket}/copy/src`, CopySourceRange: 'bytes=5-9' }));
    expect(p2.CopyPartResult?.ETag).toBe(`"${md5(plain.subarray(5, 10))}"`);
    expect(await s3Code(c.send(new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 3, CopySource: `${bucket}/copy/src`, CopySourceRange: 'bytes=5-' })))).toBe('InvalidArgument');
    expect(await s3Code(c.send(new UploadPartCopyCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 3, CopySource: `${bucket}/copy/src`, CopySourceRange: 'bytes=5-100' })))).toBe('InvalidRange');
    await c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.CopyPartResult?.ETag }, { PartNumber: 2, ETag: p2.CopyPartResult?.ETag }] } }));
    const got = await bodyBytes((await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).Body);
    expect(got.equals(Buffer.concat([src.slice(5 * MiB, 6 * MiB), plain.subarray(5, 10)]))).toBe(true);
  });

  it('every bad input answers S3\'s error code and writes nothing', async () => {
    const key = 'bad/obj';
    const id = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    for (const pn of ['0', '10001', 'abc', '-1']) {
      const r = await rawRequest(s3.port, { method: 'PUT', path: `/${bucket}/${key}`, query: { uploadId: id, partNumber: pn }, body: Buffer.from('x') });
      expect([r.status, errorCode(r.body)]).toEqual([400, 'InvalidArgument']);
    }
    expect(await partsOf(key, id)).toHaveLength(3); // the record only
    const small = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 1, Body: Buffer.alloc(MiB, 1) }));
    const last = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 2, Body: 'end' }));
    const complete = (parts: { PartNumber: number; ETag?: string }[], uploadId = id): Promise<unknown> =>
      c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: uploadId, MultipartUpload: { Parts: parts } }));
    expect(await s3Code(complete([{ PartNumber: 1, ETag: small.ETag }, { PartNumber: 2, ETag: last.ETag }]))).toBe('EntityTooSmall');
    expect(await s3Code(complete([{ PartNumber: 1, ETag: '"00000000000000000000000000000000"' }]))).toBe('InvalidPart');
    expect(await s3Code(complete([{ PartNumber: 3, ETag: last.ETag }]))).toBe('InvalidPart');
    expect(await s3Code(complete([{ PartNumber: 2, ETag: last.ETag }, { PartNumber: 1, ETag: small.ETag }]))).toBe('InvalidPartOrder');
    expect(await s3Code(complete([{ PartNumber: 2, ETag: last.ETag }, { PartNumber: 2, ETag: last.ETag }]))).toBe('InvalidPartOrder');
    expect(await s3Code(complete([{ PartNumber: 1, ETag: small.ETag }], 'f'.repeat(32)))).toBe('NoSuchUpload');
    expect(await s3Code(complete([{ PartNumber: 1, ETag: small.ETag }], 'not-an-id'))).toBe('NoSuchUpload');
    for (const body of ['<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>', '<CompleteMultipartUpload></CompleteMultipartUpload>', 'not xml', '<Other/>']) {
      const r = await rawRequest(s3.port, { method: 'POST', path: `/${bucket}/${key}`, query: { uploadId: id }, body: Buffer.from(body) });
      expect([r.status, errorCode(r.body)]).toEqual([400, 'MalformedXML']);
    }
    // None of the failed completes wrote the object.
    expect(await s3Code(c.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).toBe('NotFound');
    expect(await s3Code(c.send(new ListPartsCommand({ Bucket: 'no-such-bucket-mpu', Key: key, UploadId: id })))).toBe('NoSuchBucket');

    // A single small part is a valid (last) part; a retried Complete answers the same ETag.
    const ok = await complete([{ PartNumber: 2, ETag: last.ETag }]);
    const again = await complete([{ PartNumber: 2, ETag: last.ETag }]);
    expect((again as { ETag?: string }).ETag).toBe((ok as { ETag?: string }).ETag);
    expect(await s3Code(complete([{ PartNumber: 1, ETag: small.ETag }]))).toBe('NoSuchUpload');
    expect(await s3Code(c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 3, Body: 'late' })))).toBe('NoSuchUpload');
    // Once the key holds something else, the upload no longer resolves: NoSuchUpload.
    await c.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'newer' }));
    expect(await s3Code(complete([{ PartNumber: 2, ETag: last.ETag }]))).toBe('NoSuchUpload');
  });

  it('a part missing on every node fails the read: the connection is cut, never a short complete body', async () => {
    const key = 'lost/obj';
    const id = (await c.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }))).UploadId!;
    const p1 = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 1, Body: Buffer.alloc(5 * MiB, 7) }));
    const p2 = await c.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId: id, PartNumber: 2, Body: Buffer.alloc(100, 8) }));
    await c.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: id, MultipartUpload: { Parts: [{ PartNumber: 1, ETag: p1.ETag }, { PartNumber: 2, ETag: p2.ETag }] } }));
    // Remove part 2 behind the proxy's back, on every node (a plain DELETE through S3 cannot reach it).
    let removed = 0;
    for (const f of await storedFiles(s3.cluster, `${segmentsPrefix}${key}/${id}/00002`)) {
      await unlink(f.file);
      removed++;
    }
    expect(removed).toBe(3);
    const res = await c.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    expect(res.ContentLength).toBe(5 * MiB + 100);
    await expect(bodyBytes(res.Body)).rejects.toThrow();
  });

  it(`an abandoned upload is removed after abandoned_upload_expiry (${EXPIRY_S} s)`, { timeout: 120_000 }, async () => {
    expect(await eventually(async () => (await partsOf('abandoned/one', abandonedId)).length === 0, (EXPIRY_S + 30) * 1000, 1000)).toBe(true);
    expect(await s3Code(c.send(new ListPartsCommand({ Bucket: bucket, Key: 'abandoned/one', UploadId: abandonedId })))).toBe('NoSuchUpload');
  });
});
