/**
 * The S3 gateway end to end: a whole cluster (3 nodes, 3 replicas, rings, object/container/
 * account servers, proxy) driven by @aws-sdk/client-s3 with its default settings (checksums on),
 * plus raw signed requests for the bad inputs an SDK will not produce. Every rejected upload is
 * checked on the devices: no replica of it exists.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { Readable } from 'node:stream';
import {
  CopyObjectCommand,
  CreateBucketCommand,
  DeleteBucketCommand,
  DeleteObjectCommand,
  DeleteObjectsCommand,
  GetBucketLocationCommand,
  GetObjectCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListBucketsCommand,
  ListObjectsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  type ChecksumAlgorithm,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { waitFor } from '@swiftlet/cluster';
import { ChunkSignatureChain, signingKey } from '@swiftlet/proxy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ALICE,
  awsChunked,
  BOB,
  errorCode,
  rawRequest,
  s3Client,
  sha256hex,
  signRequest,
  startS3Cluster,
  storedReplicas,
  STORAGE_DOMAIN,
  type S3Cluster,
} from './helpers.js';

async function s3Error(p: Promise<unknown>): Promise<{ name: string; status: number | undefined }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof S3ServiceException) return { name: err.name, status: err.$metadata.httpStatusCode };
    throw err;
  }
  throw new Error('expected an S3 error');
}

const md5b64 = (b: Buffer): string => createHash('md5').update(b).digest('base64');

describe('S3 gateway on a whole cluster', () => {
  let s3: S3Cluster;
  let alice: S3Client;
  let bob: S3Client;
  const B = 'alice-bucket';

  beforeAll(async () => {
    s3 = await startS3Cluster();
    alice = s3Client(s3.endpoint, ALICE);
    bob = s3Client(s3.endpoint, BOB);
    await alice.send(new CreateBucketCommand({ Bucket: B }));
  }, 180_000);
  afterAll(async () => {
    alice?.destroy();
    bob?.destroy();
    await s3?.stop();
  });

  const nothingStored = async (key: string, bucket = B): Promise<void> => {
    expect(await storedReplicas(s3.cluster, ALICE.account, bucket, key)).toEqual([]);
    expect((await s3Error(alice.send(new HeadObjectCommand({ Bucket: bucket, Key: key })))).status).toBe(404);
  };

  describe('buckets', () => {
    it('ListBuckets, HeadBucket, GetBucketLocation; x-amz-request-id on every answer', async () => {
      const list = await alice.send(new ListBucketsCommand({}));
      expect(list.Buckets?.map((b) => b.Name)).toEqual([B]);
      expect(list.Owner?.ID).toBe(ALICE.account);
      expect(list.$metadata.requestId).toMatch(/^[0-9A-F]{16}$/);
      expect(list.$metadata.extendedRequestId).toBeTruthy();
      expect((await alice.send(new HeadBucketCommand({ Bucket: B }))).$metadata.httpStatusCode).toBe(200);
      expect((await alice.send(new GetBucketLocationCommand({ Bucket: B }))).LocationConstraint).toBeUndefined();
      expect((await bob.send(new ListBucketsCommand({}))).Buckets ?? []).toEqual([]);
    });

    it('bucket names are global: owner -> BucketAlreadyOwnedByYou, others -> BucketAlreadyExists', async () => {
      expect(await s3Error(alice.send(new CreateBucketCommand({ Bucket: B })))).toEqual({ name: 'BucketAlreadyOwnedByYou', status: 409 });
      expect(await s3Error(bob.send(new CreateBucketCommand({ Bucket: B })))).toEqual({ name: 'BucketAlreadyExists', status: 409 });
    });

    it("a user cannot see or touch another account's bucket (AccessDenied); unknown buckets are NoSuchBucket", async () => {
      await alice.send(new PutObjectCommand({ Bucket: B, Key: 'private.txt', Body: 'mine' }));
      expect(await s3Error(bob.send(new GetObjectCommand({ Bucket: B, Key: 'private.txt' })))).toEqual({ name: 'AccessDenied', status: 403 });
      expect(await s3Error(bob.send(new PutObjectCommand({ Bucket: B, Key: 'x', Body: 'y' })))).toEqual({ name: 'AccessDenied', status: 403 });
      expect(await s3Error(bob.send(new ListObjectsV2Command({ Bucket: B })))).toEqual({ name: 'AccessDenied', status: 403 });
      expect(await s3Error(bob.send(new DeleteBucketCommand({ Bucket: B })))).toEqual({ name: 'AccessDenied', status: 403 });
      expect((await s3Error(bob.send(new HeadBucketCommand({ Bucket: B })))).status).toBe(403);
      expect(await s3Error(alice.send(new GetObjectCommand({ Bucket: 'no-such-bucket-here', Key: 'k' })))).toEqual({ name: 'NoSuchBucket', status: 404 });
      expect(await storedReplicas(s3.cluster, BOB.account, B, 'x')).toEqual([]);
    });

    it('InvalidBucketName; LocationConstraint body; DeleteBucket with BucketNotEmpty', async () => {
      for (const bad of ['Bad_Name', 'ab', 'a..b', '10.0.0.1']) {
        expect(await s3Error(alice.send(new CreateBucketCommand({ Bucket: bad })))).toMatchObject({ name: 'InvalidBucketName', status: 400 });
      }
      expect(await s3Error(alice.send(new CreateBucketCommand({ Bucket: 'elsewhere-bucket', CreateBucketConfiguration: { LocationConstraint: 'eu-west-1' } })))).toMatchObject({ name: 'InvalidLocationConstraint' });
      await alice.send(new CreateBucketCommand({ Bucket: 'tmp-bucket', CreateBucketConfiguration: { LocationConstraint: 'us-east-1' } }));
      await alice.send(new PutObjectCommand({ Bucket: 'tmp-bucket', Key: 'k', Body: 'v' }));
      expect(await s3Error(alice.send(new DeleteBucketCommand({ Bucket: 'tmp-bucket' })))).toEqual({ name: 'BucketNotEmpty', status: 409 });
      await alice.send(new DeleteObjectCommand({ Bucket: 'tmp-bucket', Key: 'k' }));
      await alice.send(new DeleteBucketCommand({ Bucket: 'tmp-bucket' }));
      expect(await s3Error(alice.send(new HeadBucketCommand({ Bucket: 'tmp-bucket' })))).toMatchObject({ status: 404 });
      // Once deleted, the name is free for anyone.
      await bob.send(new CreateBucketCommand({ Bucket: 'tmp-bucket' }));
      expect((await bob.send(new ListBucketsCommand({}))).Buckets?.map((b) => b.Name)).toEqual(['tmp-bucket']);
      await bob.send(new DeleteBucketCommand({ Bucket: 'tmp-bucket' }));
    });

    // Without compare-and-set in the store, claims that overlap within one write's duration are
    // decided best-effort (see the README); what always holds is checked here.
    it('concurrent CreateBucket of one name by two accounts: only BucketAlreadyExists refusals, winners own the bucket', async () => {
      for (const name of ['race-one', 'race-two', 'race-three']) {
        const results = await Promise.allSettled([alice.send(new CreateBucketCommand({ Bucket: name })), bob.send(new CreateBucketCommand({ Bucket: name }))]);
        const won = results.filter((x) => x.status === 'fulfilled').length;
        for (const x of results) if (x.status === 'rejected') expect((x.reason as Error).name, name).toBe('BucketAlreadyExists');
        const owners = [
          ...((await alice.send(new ListBucketsCommand({}))).Buckets ?? []).filter((b) => b.Name === name).map(() => 'alice'),
          ...((await bob.send(new ListBucketsCommand({}))).Buckets ?? []).filter((b) => b.Name === name).map(() => 'bob'),
        ];
        expect(owners.length, name).toBe(won);
      }
    });

    it('CreateBucket with malformed XML -> MalformedXML, no bucket', async () => {
      const body = Buffer.from('<CreateBucketConfiguration><LocationConstraint>us-east-1</Loc');
      const res = await rawRequest(s3.port, { method: 'PUT', path: '/malformed-bucket', body });
      expect([res.status, errorCode(res.body)]).toEqual([400, 'MalformedXML']);
      expect((await s3Error(alice.send(new HeadBucketCommand({ Bucket: 'malformed-bucket' })))).status).toBe(404);
    });
  });

  describe('objects', () => {
    it('PutObject keeps metadata and headers; GetObject and HeadObject return them', async () => {
      const expires = new Date('2030-01-01T00:00:00Z');
      const put = await alice.send(
        new PutObjectCommand({
          Bucket: B,
          Key: 'dir/héllo wörld+.txt',
          Body: 'hello world',
          ContentType: 'text/plain',
          CacheControl: 'max-age=60',
          ContentDisposition: 'attachment; filename="h.txt"',
          ContentEncoding: 'identity',
          ContentLanguage: 'en',
          Expires: expires,
          Metadata: { color: 'blue', 'two-words': 'a b' },
        }),
      );
      expect(put.ETag).toBe(`"${createHash('md5').update('hello world').digest('hex')}"`);
      const get = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'dir/héllo wörld+.txt' }));
      expect(await get.Body?.transformToString()).toBe('hello world');
      expect(get.ContentType).toBe('text/plain');
      expect(get.CacheControl).toBe('max-age=60');
      expect(get.ContentDisposition).toBe('attachment; filename="h.txt"');
      expect(get.ContentEncoding).toBe('identity');
      expect(get.ContentLanguage).toBe('en');
      expect(get.Expires?.toISOString()).toBe(expires.toISOString());
      expect(get.Metadata).toEqual({ color: 'blue', 'two-words': 'a b' });
      expect(get.ETag).toBe(put.ETag);
      expect(get.LastModified).toBeInstanceOf(Date);
      const head = await alice.send(new HeadObjectCommand({ Bucket: B, Key: 'dir/héllo wörld+.txt' }));
      expect(head.ContentLength).toBe(11);
      expect(head.Metadata?.['color']).toBe('blue');
      expect(await storedReplicas(s3.cluster, ALICE.account, B, 'dir/héllo wörld+.txt')).toHaveLength(3);
    });

    it('every checksum algorithm, small (buffered) and large (streamed, aws-chunked trailer), stored and returned', async () => {
      const algorithms: ChecksumAlgorithm[] = ['CRC32', 'CRC32C', 'CRC64NVME', 'SHA1', 'SHA256'];
      for (const alg of algorithms) {
        for (const size of [1000, 300 * 1024]) {
          const body = randomBytes(size);
          const key = `sum/${alg}-${size}`;
          // A stream body makes the SDK send STREAMING-UNSIGNED-PAYLOAD-TRAILER with the checksum as a trailer.
          const put = await alice.send(new PutObjectCommand({ Bucket: B, Key: key, Body: Readable.from([body]), ContentLength: size, ChecksumAlgorithm: alg }));
          const field = `Checksum${alg}` as 'ChecksumCRC32';
          expect(put[field], `${alg} ${size}`).toBeTruthy();
          const head = await alice.send(new HeadObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }));
          expect(head[field], `${alg} ${size}`).toBe(put[field]);
          // The SDK validates the returned checksum against the body it reads.
          const get = await alice.send(new GetObjectCommand({ Bucket: B, Key: key, ChecksumMode: 'ENABLED' }));
          expect(Buffer.from(await get.Body!.transformToByteArray()).equals(body)).toBe(true);
        }
      }
    });

    it('Range: bounded, open, suffix; 416 InvalidRange beyond the end', async () => {
      const body = Buffer.from('0123456789');
      await alice.send(new PutObjectCommand({ Bucket: B, Key: 'range.txt', Body: body }));
      const get = async (range: string) => {
        const r = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'range.txt', Range: range }));
        return [r.$metadata.httpStatusCode, r.ContentRange, await r.Body?.transformToString()];
      };
      expect(await get('bytes=2-4')).toEqual([206, 'bytes 2-4/10', '234']);
      expect(await get('bytes=7-')).toEqual([206, 'bytes 7-9/10', '789']);
      expect(await get('bytes=-3')).toEqual([206, 'bytes 7-9/10', '789']);
      expect(await get('bytes=5-100')).toEqual([206, 'bytes 5-9/10', '56789']);
      expect(await s3Error(alice.send(new GetObjectCommand({ Bucket: B, Key: 'range.txt', Range: 'bytes=10-20' })))).toEqual({ name: 'InvalidRange', status: 416 });
      const whole = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'range.txt', PartNumber: 1 }));
      expect([whole.$metadata.httpStatusCode, await whole.Body?.transformToString()]).toEqual([206, '0123456789']);
    });

    it('conditional GET with S3 precedence; 304 and 412', async () => {
      const put = await alice.send(new PutObjectCommand({ Bucket: B, Key: 'cond.txt', Body: 'c' }));
      const etag = put.ETag as string;
      const past = new Date(Date.now() - 3600_000);
      const future = new Date(Date.now() + 3600_000);
      const ok = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'cond.txt', IfMatch: etag, IfUnmodifiedSince: past }));
      expect(ok.$metadata.httpStatusCode).toBe(200);
      expect((await s3Error(alice.send(new GetObjectCommand({ Bucket: B, Key: 'cond.txt', IfNoneMatch: etag, IfModifiedSince: past })))).status).toBe(304);
      expect(await s3Error(alice.send(new GetObjectCommand({ Bucket: B, Key: 'cond.txt', IfMatch: '"0000"' })))).toEqual({ name: 'PreconditionFailed', status: 412 });
      expect((await s3Error(alice.send(new GetObjectCommand({ Bucket: B, Key: 'cond.txt', IfModifiedSince: future })))).status).toBe(304);
      expect((await s3Error(alice.send(new HeadObjectCommand({ Bucket: B, Key: 'cond.txt', IfUnmodifiedSince: past })))).status).toBe(412);
    });

    it('response-* overrides and presigned GET/PUT URLs; expired URL -> AccessDenied', async () => {
      const putUrl = await getSignedUrl(alice, new PutObjectCommand({ Bucket: B, Key: 'presigned.txt' }), { expiresIn: 300 });
      const put = await fetch(putUrl, { method: 'PUT', body: 'via presigned PUT' });
      expect(put.status).toBe(200);
      const getUrl = await getSignedUrl(alice, new GetObjectCommand({ Bucket: B, Key: 'presigned.txt', ResponseContentType: 'application/x-test', ResponseContentDisposition: 'inline' }), { expiresIn: 300 });
      const got = await fetch(getUrl);
      expect([got.status, got.headers.get('content-type'), got.headers.get('content-disposition'), await got.text()]).toEqual([200, 'application/x-test', 'inline', 'via presigned PUT']);
      const shortUrl = await getSignedUrl(alice, new GetObjectCommand({ Bucket: B, Key: 'presigned.txt' }), { expiresIn: 1 });
      const expired = await waitFor(async () => {
        const r = await fetch(shortUrl);
        const text = await r.text();
        return r.status === 403 ? text : undefined;
      }, { timeoutMs: 5000, intervalMs: 250, what: 'presigned URL to expire' });
      expect(errorCode(expired)).toBe('AccessDenied');
      expect(expired).toContain('Request has expired');
      const tampered = await fetch(getUrl.replace('presigned.txt', 'private.txt'));
      expect([tampered.status, errorCode(await tampered.text())]).toEqual([403, 'SignatureDoesNotMatch']);
    });

    it('CopyObject: COPY and REPLACE directives, onto itself needs REPLACE, copy-source conditions', async () => {
      await alice.send(new PutObjectCommand({ Bucket: B, Key: 'src/ä b.txt', Body: 'copy me', ContentType: 'text/x-src', Metadata: { m: '1' } }));
      const copy = await alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/copy.txt', CopySource: `${B}/${encodeURIComponent('src/ä b.txt')}` }));
      expect(copy.CopyObjectResult?.ETag).toBe(`"${createHash('md5').update('copy me').digest('hex')}"`);
      const got = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'dst/copy.txt' }));
      expect([await got.Body?.transformToString(), got.ContentType, got.Metadata]).toEqual(['copy me', 'text/x-src', { m: '1' }]);
      await alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/replaced.txt', CopySource: `${B}/src/${encodeURIComponent('ä b.txt')}`, MetadataDirective: 'REPLACE', ContentType: 'text/x-new', Metadata: { n: '2' } }));
      const rep = await alice.send(new HeadObjectCommand({ Bucket: B, Key: 'dst/replaced.txt' }));
      expect([rep.ContentType, rep.Metadata]).toEqual(['text/x-new', { n: '2' }]);
      expect(await s3Error(alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/copy.txt', CopySource: `${B}/dst/copy.txt` })))).toEqual({ name: 'InvalidRequest', status: 400 });
      await alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/copy.txt', CopySource: `${B}/dst/copy.txt`, MetadataDirective: 'REPLACE', Metadata: { self: 'yes' } }));
      expect((await alice.send(new HeadObjectCommand({ Bucket: B, Key: 'dst/copy.txt' }))).Metadata).toEqual({ self: 'yes' });
      expect(await s3Error(alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/never.txt', CopySource: `${B}/src/${encodeURIComponent('ä b.txt')}`, CopySourceIfMatch: '"0000"' })))).toEqual({ name: 'PreconditionFailed', status: 412 });
      expect(await s3Error(alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/never.txt', CopySource: `${B}/src/missing` })))).toEqual({ name: 'NoSuchKey', status: 404 });
      await nothingStored('dst/never.txt');
      // Copying from another account's bucket is refused.
      await bob.send(new CreateBucketCommand({ Bucket: 'bob-bucket' }));
      await bob.send(new PutObjectCommand({ Bucket: 'bob-bucket', Key: 'b.txt', Body: 'bob' }));
      expect(await s3Error(alice.send(new CopyObjectCommand({ Bucket: B, Key: 'dst/stolen.txt', CopySource: 'bob-bucket/b.txt' })))).toEqual({ name: 'AccessDenied', status: 403 });
    });

    it('DeleteObject is idempotent; DeleteObjects normal and quiet; more than 1000 keys and malformed XML refused', async () => {
      for (const k of ['del/a', 'del/b', 'del/c']) await alice.send(new PutObjectCommand({ Bucket: B, Key: k, Body: k }));
      expect((await alice.send(new DeleteObjectCommand({ Bucket: B, Key: 'del/none' }))).$metadata.httpStatusCode).toBe(204);
      const res = await alice.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: [{ Key: 'del/a' }, { Key: 'del/missing' }] } }));
      expect(res.Deleted?.map((d) => d.Key).sort()).toEqual(['del/a', 'del/missing']);
      const quiet = await alice.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Quiet: true, Objects: [{ Key: 'del/b' }, { Key: 'del/c' }] } }));
      expect(quiet.Deleted ?? []).toEqual([]);
      expect(quiet.Errors ?? []).toEqual([]);
      expect((await alice.send(new ListObjectsV2Command({ Bucket: B, Prefix: 'del/' }))).KeyCount).toBe(0);
      const tooMany = await s3Error(alice.send(new DeleteObjectsCommand({ Bucket: B, Delete: { Objects: Array.from({ length: 1001 }, (_, i) => ({ Key: `k${i}` })) } })));
      expect(tooMany).toEqual({ name: 'MalformedXML', status: 400 });
      const bad = Buffer.from('<Delete><Object><Key>x</Key></Delete>');
      const malformed = await rawRequest(s3.port, { method: 'POST', path: `/${B}`, query: { delete: '' }, body: bad, headers: { 'content-md5': md5b64(bad) } });
      expect([malformed.status, errorCode(malformed.body)]).toEqual([400, 'MalformedXML']);
      const good = Buffer.from('<Delete><Object><Key>x</Key></Object></Delete>');
      const noMd5 = await rawRequest(s3.port, { method: 'POST', path: `/${B}`, query: { delete: '' }, body: good });
      expect([noMd5.status, errorCode(noMd5.body)]).toEqual([400, 'InvalidRequest']);
      const wrongMd5 = await rawRequest(s3.port, { method: 'POST', path: `/${B}`, query: { delete: '' }, body: good, headers: { 'content-md5': md5b64(bad) } });
      expect([wrongMd5.status, errorCode(wrongMd5.body)]).toEqual([400, 'BadDigest']);
    });
  });

  describe('listing', () => {
    const L = 'list-bucket';
    const keys = ['a.txt', 'b/1.txt', 'b/2.txt', 'b/c/3.txt', 'c d/é.txt', 'd.txt', 'e/1', 'e/2', 'f.txt'];
    beforeAll(async () => {
      await alice.send(new CreateBucketCommand({ Bucket: L }));
      for (const k of keys) await alice.send(new PutObjectCommand({ Bucket: L, Key: k, Body: k }));
    });

    it('ListObjectsV2 with delimiter: keys and common prefixes counted together, paginated by token', async () => {
      const seen: string[] = [];
      let token: string | undefined;
      let pages = 0;
      do {
        const page = await alice.send(new ListObjectsV2Command({ Bucket: L, Delimiter: '/', MaxKeys: 2, ContinuationToken: token }));
        pages++;
        expect(page.KeyCount).toBeLessThanOrEqual(2);
        seen.push(...(page.Contents ?? []).map((c) => c.Key as string), ...(page.CommonPrefixes ?? []).map((p) => p.Prefix as string));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      expect(seen.sort()).toEqual(['a.txt', 'b/', 'c d/', 'd.txt', 'e/', 'f.txt']);
      expect(pages).toBe(3);
    });

    it('ListObjectsV2: prefix, start-after, fetch-owner, encoding-type=url', async () => {
      const p = await alice.send(new ListObjectsV2Command({ Bucket: L, Prefix: 'b/', Delimiter: '/' }));
      expect(p.Contents?.map((c) => c.Key)).toEqual(['b/1.txt', 'b/2.txt']);
      expect(p.CommonPrefixes?.map((c) => c.Prefix)).toEqual(['b/c/']);
      expect(p.Contents?.[0]?.Owner).toBeUndefined();
      expect(p.Contents?.[0]?.Size).toBe(7);
      expect(p.Contents?.[0]?.ETag).toBe(`"${createHash('md5').update('b/1.txt').digest('hex')}"`);
      const sa = await alice.send(new ListObjectsV2Command({ Bucket: L, StartAfter: 'd.txt', FetchOwner: true }));
      expect(sa.Contents?.map((c) => c.Key)).toEqual(['e/1', 'e/2', 'f.txt']);
      expect(sa.Contents?.[0]?.Owner?.ID).toBe(ALICE.account);
      // The SDK decodes url-encoded keys itself when it asked for encoding-type=url.
      const raw = await rawRequest(s3.port, { method: 'GET', path: `/${L}`, query: { 'list-type': '2', prefix: 'c d/', 'encoding-type': 'url' } });
      expect(raw.body).toContain('<Key>c%20d/%C3%A9.txt</Key>');
      expect(raw.body).toContain('<EncodingType>url</EncodingType>');
    });

    it('ListObjects v1: marker, NextMarker only with a delimiter, IsTruncated', async () => {
      const first = await alice.send(new ListObjectsCommand({ Bucket: L, MaxKeys: 3 }));
      expect(first.Contents?.map((c) => c.Key)).toEqual(['a.txt', 'b/1.txt', 'b/2.txt']);
      expect(first.IsTruncated).toBe(true);
      expect(first.NextMarker).toBeUndefined();
      const second = await alice.send(new ListObjectsCommand({ Bucket: L, MaxKeys: 3, Marker: 'b/2.txt' }));
      expect(second.Contents?.map((c) => c.Key)).toEqual(['b/c/3.txt', 'c d/é.txt', 'd.txt']);
      const d1 = await alice.send(new ListObjectsCommand({ Bucket: L, Delimiter: '/', MaxKeys: 2 }));
      expect([d1.Contents?.map((c) => c.Key), d1.CommonPrefixes?.map((c) => c.Prefix), d1.NextMarker]).toEqual([['a.txt'], ['b/'], 'b/']);
      const d2 = await alice.send(new ListObjectsCommand({ Bucket: L, Delimiter: '/', MaxKeys: 2, Marker: d1.NextMarker }));
      expect([d2.Contents?.map((c) => c.Key), d2.CommonPrefixes?.map((c) => c.Prefix)]).toEqual([[], ['c d/']].map((x, i) => (i === 0 ? undefined : x)).map((x, i) => (i === 0 ? d2.Contents?.map((c) => c.Key) : x)));
      expect(d2.CommonPrefixes?.map((c) => c.Prefix)).toEqual(['c d/']);
      expect(d2.Contents?.map((c) => c.Key)).toEqual(['d.txt']);
      const all = await alice.send(new ListObjectsCommand({ Bucket: L }));
      expect([all.Contents?.length, all.IsTruncated]).toEqual([keys.length, false]);
    });
  });

  describe('bad input: exact error and nothing stored', () => {
    it('Content-MD5 mismatch -> BadDigest (small and streamed sizes); a matching one on a streamed body is the ETag', async () => {
      // Past verify_buffer_size the body streams to the object servers, and the proxy hashes it
      // only once: the verifier checks Content-MD5 before the last byte goes on, and the trailer
      // the object servers get carries that MD5.
      for (const size of [5000, 1024 * 1024]) {
        const body = randomBytes(size);
        const key = `bad/md5-${size}`;
        const res = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/${key}`, body, headers: { 'content-md5': md5b64(Buffer.from('other')) } });
        expect([res.status, errorCode(res.body)], key).toEqual([400, 'BadDigest']);
        await nothingStored(key);
      }
      const body = randomBytes(1024 * 1024 + 17);
      const ok = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/md5/streamed`, body, headers: { 'content-md5': md5b64(body) } });
      expect(ok.status).toBe(200);
      expect(ok.headers['etag']).toBe(`"${createHash('md5').update(body).digest('hex')}"`);
      const got = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'md5/streamed' }));
      expect(Buffer.from(await (got.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray()).equals(body)).toBe(true);
    });

    it('signed payload whose body differs -> XAmzContentSHA256Mismatch (small and streamed sizes)', async () => {
      for (const size of [1000, 512 * 1024]) {
        const body = randomBytes(size);
        const key = `bad/sha-${size}`;
        const res = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/${key}`, body: [body.subarray(0, size - 10), body.subarray(size - 10)], payloadHash: sha256hex(randomBytes(10)) });
        expect([res.status, errorCode(res.body)], key).toEqual([400, 'XAmzContentSHA256Mismatch']);
        await nothingStored(key);
      }
    });

    it('x-amz-checksum-* header mismatch -> BadDigest; trailer mismatch on a streamed body -> BadDigest', async () => {
      const body = randomBytes(4096);
      const res = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/bad/crc`, body, headers: { 'x-amz-checksum-crc32': 'AAAAAA==' } });
      expect([res.status, errorCode(res.body)]).toEqual([400, 'BadDigest']);
      await nothingStored('bad/crc');
      const big = randomBytes(400 * 1024);
      const wire = awsChunked(big, 64 * 1024, { 'x-amz-checksum-sha256': createHash('sha256').update('not the body').digest('base64') });
      const res2 = await rawRequest(s3.port, {
        method: 'PUT',
        path: `/${B}/bad/trailer`,
        body: wire,
        payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(big.length), 'x-amz-trailer': 'x-amz-checksum-sha256' },
      });
      expect([res2.status, errorCode(res2.body)]).toEqual([400, 'BadDigest']);
      await nothingStored('bad/trailer');
    });

    it('aws-chunked body shorter than x-amz-decoded-content-length -> IncompleteBody', async () => {
      const data = randomBytes(200 * 1024);
      const wire = awsChunked(data, 64 * 1024);
      const res = await rawRequest(s3.port, {
        method: 'PUT',
        path: `/${B}/bad/short-chunked`,
        body: wire,
        payloadHash: 'STREAMING-UNSIGNED-PAYLOAD-TRAILER',
        headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length + 100) },
      });
      expect([res.status, errorCode(res.body)]).toEqual([400, 'IncompleteBody']);
      await nothingStored('bad/short-chunked');
    });

    it('client that sends less than its Content-Length and goes away: nothing stored', async () => {
      const body = randomBytes(300 * 1024);
      await rawRequest(s3.port, { method: 'PUT', path: `/${B}/bad/truncated`, body: [body], payloadHash: 'UNSIGNED-PAYLOAD', truncateAt: 100 * 1024 });
      // The proxy must have given up on the upload: poll until the access log line for it appears.
      await waitFor(async () => (await import('node:fs/promises')).readFile(`${s3.cluster.dir}/log/proxy-server.log`, 'utf8').then((t) => t.includes('/bad/truncated')), { timeoutMs: 15_000, what: 'the truncated PUT to end' });
      await nothingStored('bad/truncated');
    });

    it('STREAMING-AWS4-HMAC-SHA256-PAYLOAD: good chunk signatures store; one bad chunk signature -> SignatureDoesNotMatch, nothing stored', async () => {
      const send = async (key: string, data: Buffer, corrupt: boolean): Promise<{ status: number; body: string }> => {
        const chunkSize = 64 * 1024;
        const chunks: Buffer[] = [];
        for (let i = 0; i < data.length; i += chunkSize) chunks.push(data.subarray(i, i + chunkSize));
        chunks.push(Buffer.alloc(0));
        const wireLength = chunks.reduce((n, c) => n + c.length.toString(16).length + ';chunk-signature='.length + 64 + 4 + c.length, 0);
        const date = new Date();
        const { headers, path } = await signRequest(s3.port, {
          method: 'PUT',
          path: `/${B}/${key}`,
          payloadHash: 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
          signingDate: date,
          headers: { 'content-encoding': 'aws-chunked', 'x-amz-decoded-content-length': String(data.length), 'content-length': String(wireLength) },
        });
        const seed = /Signature=([0-9a-f]{64})/.exec(headers['authorization']!)![1]!;
        const amzDate = headers['x-amz-date']!;
        const chain = new ChunkSignatureChain({ signingKey: signingKey(ALICE.secretKey, amzDate.slice(0, 8), 'us-east-1', 's3'), amzDate, scope: `${amzDate.slice(0, 8)}/us-east-1/s3/aws4_request`, seedSignature: seed });
        const wire: Buffer[] = chunks.map((c, i) => {
          let sig = chain.next(sha256hex(c));
          if (corrupt && i === 2) sig = sig.replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
          return Buffer.concat([Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`), c, Buffer.from('\r\n')]);
        });
        return new Promise((resolve, reject) => {
          const req = http.request({ host: '127.0.0.1', port: s3.port, method: 'PUT', path, headers, agent: false }, (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
          });
          req.on('error', reject);
          for (const w of wire) req.write(w);
          req.end();
        });
      };
      const data = randomBytes(300 * 1024);
      expect((await send('signed/ok', data, false)).status).toBe(200);
      const got = await alice.send(new GetObjectCommand({ Bucket: B, Key: 'signed/ok' }));
      expect(Buffer.from(await got.Body!.transformToByteArray()).equals(data)).toBe(true);
      const bad = await send('signed/bad', data, true);
      expect([bad.status, errorCode(bad.body)]).toEqual([403, 'SignatureDoesNotMatch']);
      await nothingStored('signed/bad');
    });

    it('Expect: 100-continue: the body is sent only after authentication; a bad signature is refused before it', async () => {
      const send = async (user: typeof ALICE, key: string): Promise<{ continued: boolean; status: number; body: string }> => {
        const body = randomBytes(64 * 1024);
        const { headers, path } = await signRequest(s3.port, { method: 'PUT', path: `/${B}/${key}`, body, user, headers: { expect: '100-continue' } });
        return new Promise((resolve, reject) => {
          let continued = false;
          const req = http.request({ host: '127.0.0.1', port: s3.port, method: 'PUT', path, headers, agent: false });
          req.on('continue', () => {
            continued = true;
            req.end(body);
          });
          req.on('response', (res) => {
            let text = '';
            res.on('data', (d: Buffer) => (text += d.toString()));
            res.on('end', () => resolve({ continued, status: res.statusCode ?? 0, body: text }));
          });
          req.on('error', reject);
          req.flushHeaders();
        });
      };
      const ok = await send(ALICE, 'expect/ok');
      expect([ok.continued, ok.status]).toEqual([true, 200]);
      const bad = await send({ ...ALICE, secretKey: 'wrong' }, 'expect/bad');
      expect([bad.continued, bad.status, errorCode(bad.body)]).toEqual([false, 403, 'SignatureDoesNotMatch']);
      await nothingStored('expect/bad');
    });

    it('key longer than 1024 bytes -> KeyTooLongError', async () => {
      const key = 'k'.repeat(1025);
      expect(await s3Error(alice.send(new PutObjectCommand({ Bucket: B, Key: key, Body: 'x' })))).toEqual({ name: 'KeyTooLongError', status: 400 });
      expect(await storedReplicas(s3.cluster, ALICE.account, B, key)).toEqual([]);
    });

    it('auth failures: unknown key, wrong secret, skewed clock, anonymous', async () => {
      const stranger = s3Client(s3.endpoint, { accessKey: 'AKIANOBODY', secretKey: 'x', account: 'x' });
      expect(await s3Error(stranger.send(new PutObjectCommand({ Bucket: B, Key: 'auth/x', Body: 'x' })))).toEqual({ name: 'InvalidAccessKeyId', status: 403 });
      const wrong = s3Client(s3.endpoint, { ...ALICE, secretKey: 'wrong' });
      expect(await s3Error(wrong.send(new PutObjectCommand({ Bucket: B, Key: 'auth/x', Body: 'x' })))).toEqual({ name: 'SignatureDoesNotMatch', status: 403 });
      stranger.destroy();
      wrong.destroy();
      const skewed = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/auth/x`, body: Buffer.from('x'), signingDate: new Date(Date.now() - 20 * 60_000) });
      expect([skewed.status, errorCode(skewed.body)]).toEqual([403, 'RequestTimeTooSkewed']);
      const anon = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/auth/x`, body: Buffer.from('x'), anonymous: true });
      expect([anon.status, errorCode(anon.body)]).toEqual([403, 'AccessDenied']);
      expect(anon.headers['x-amz-request-id']).toMatch(/^[0-9A-F]{16}$/);
      await nothingStored('auth/x');
    });

    it('unsupported subresources and methods -> NotImplemented (501); HEAD errors have no body', async () => {
      for (const q of ['tagging', 'acl', 'lifecycle', 'policy', 'cors', 'versions']) {
        const r = await rawRequest(s3.port, { method: 'GET', path: `/${B}`, query: { [q]: '' } });
        expect([r.status, errorCode(r.body)], q).toEqual([501, 'NotImplemented']);
      }
      const post = await rawRequest(s3.port, { method: 'POST', path: `/${B}/k`, query: { restore: '' } });
      expect([post.status, errorCode(post.body)]).toEqual([501, 'NotImplemented']);
      const patch = await rawRequest(s3.port, { method: 'PATCH', path: `/${B}/k` });
      expect([patch.status, errorCode(patch.body)]).toEqual([501, 'NotImplemented']);
      const tagged = await rawRequest(s3.port, { method: 'PUT', path: `/${B}/tagged`, body: Buffer.from('x'), headers: { 'x-amz-tagging': 'a=b' } });
      expect([tagged.status, errorCode(tagged.body)]).toEqual([501, 'NotImplemented']);
      await nothingStored('tagged');
      const head = await rawRequest(s3.port, { method: 'HEAD', path: `/${B}/does-not-exist` });
      expect([head.status, head.body, head.headers['x-amz-request-id'] !== undefined]).toEqual([404, '', true]);
    });
  });

  describe('addressing and users', () => {
    it(`virtual-hosted style under storage_domain (${STORAGE_DOMAIN})`, async () => {
      await alice.send(new PutObjectCommand({ Bucket: B, Key: 'vhost/k.txt', Body: 'virtual' }));
      const r = await rawRequest(s3.port, { method: 'GET', path: '/vhost/k.txt', host: `${B}.${STORAGE_DOMAIN}:${s3.port}` });
      expect([r.status, r.body]).toEqual([200, 'virtual']);
      const list = await rawRequest(s3.port, { method: 'GET', path: '/', query: { 'list-type': '2', prefix: 'vhost/' }, host: `${B}.${STORAGE_DOMAIN}:${s3.port}` });
      expect(list.body).toContain('<Key>vhost/k.txt</Key>');
    });

    it('GET /metrics (unauthenticated) counts the requests answered so far', async () => {
      const res = await fetch(`${s3.endpoint}/metrics`);
      const text = await res.text();
      expect([res.status, res.headers.get('content-type')]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8']);
      expect(Number(/swiftlet_proxy_requests_total\{method="PUT",status="2xx"\} (\d+)/.exec(text)?.[1])).toBeGreaterThanOrEqual(1);
      expect(text).toContain('swiftlet_proxy_backend_backend_errors_total');
    });

    it('the credentials file is re-read when it changes', async () => {
      const carol = { accessKey: 'AKIACAROL000000003', secretKey: 'carol-secret', account: 'AUTH_carol' };
      const client = s3Client(s3.endpoint, carol);
      expect((await s3Error(client.send(new ListBucketsCommand({})))).name).toBe('InvalidAccessKeyId');
      await s3.cluster.writeCredentials([ALICE, BOB, carol]);
      await waitFor(async () => (await client.send(new ListBucketsCommand({})).then(() => true, () => false)), { timeoutMs: 10_000, what: 'the new user to be accepted' });
      await s3.cluster.writeCredentials([ALICE, BOB]);
      await waitFor(async () => (await client.send(new ListBucketsCommand({})).then(() => false, () => true)), { timeoutMs: 10_000, what: 'the removed user to be refused' });
      client.destroy();
    });
  });

  // Last: it stops the proxy.
  it('SIGTERM: the proxy stops accepting and exits 0', async () => {
    const proxy = s3.cluster.processes.get('proxy-server');
    expect(proxy).toBeDefined();
    await proxy!.stop(20_000);
    expect(await proxy!.exited).toBe(0);
    await expect(fetch(`${s3.endpoint}/healthcheck`)).rejects.toThrow();
  });
});
