import { mkdtempSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { silentLogger } from '@swiftlet/common';
import { describe, expect, it } from 'vitest';
import { AwsChunkedDecoder } from './aws-chunked.js';
import { bucketNameProblem, isValidBucketName } from './bucket-name.js';
import { checksumFromHeaders, createChecksum, CHECKSUM_ALGORITHMS } from './checksums.js';
import { evaluateConditions } from './conditional.js';
import { CredentialStore, parseCredentials } from './credentials.js';
import { decodeToken, effectiveMarker, encodeToken, s3Timestamp } from './list-objects.js';
import { PayloadVerifier } from './payload-verifier.js';
import { parseRange, resolveRange } from './range.js';
import { S3Error } from './s3-error.js';
import { resolveAddress } from './s3-request.js';
import { escapeXml, parseXml, xmlDocument } from './xml.js';

async function run(input: Buffer[], ...stages: NodeJS.ReadWriteStream[]): Promise<Buffer> {
  const out: Buffer[] = [];
  await (pipeline as (...s: unknown[]) => Promise<void>)(Readable.from(input), ...stages, async function* (src: AsyncIterable<Buffer>) {
    for await (const p of src) out.push(p);
  });
  return Buffer.concat(out);
}

describe('XML', () => {
  it('escapes text and attributes, repeats arrays, skips undefined', () => {
    const doc = xmlDocument({ R: { '@xmlns': 'x"y', A: 'a<b>&"\'', B: [1, 2], C: undefined, D: { E: true }, F: '\u0001' } });
    expect(doc).toBe('<?xml version="1.0" encoding="UTF-8"?>\n<R xmlns="x&quot;y"><A>a&lt;b&gt;&amp;&quot;&apos;</A><B>1</B><B>2</B><D><E>true</E></D><F>&#x1;</F></R>');
    expect(escapeXml('ok')).toBe('ok');
  });
  it('error documents carry Code, Message, extras, Resource, RequestId', () => {
    const e = new S3Error('NoSuchKey', 'The specified key does not exist.', { extra: { Key: 'a&b' } });
    expect(e.status).toBe(404);
    expect(e.toXML('REQ1', '/b/a&b')).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code><Message>The specified key does not exist.</Message><Key>a&amp;b</Key><Resource>/b/a&amp;b</Resource><RequestId>REQ1</RequestId></Error>',
    );
  });
  it('parses documents; malformed ones are undefined', () => {
    const doc = parseXml('<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet><Object><Key>a &amp; b</Key></Object></Delete>');
    expect(doc).toEqual({ Delete: { Quiet: 'true', Object: [{ Key: 'a & b' }] } });
    expect(parseXml('<Delete><Object><Key>x</Key></Delete>')).toBeUndefined();
    expect(parseXml('not xml at all <')).toBeUndefined();
    expect(parseXml('')).toBeUndefined();
  });
});

describe('bucket names', () => {
  it('accepts S3-valid names', () => {
    for (const n of ['abc', 'my-bucket.data', 'a1b', 'x'.repeat(63), '1.2.3']) expect(isValidBucketName(n), n).toBe(true);
  });
  it('rejects invalid names with a reason', () => {
    for (const n of ['ab', 'x'.repeat(64), 'Upper', 'under_score', '-start', 'end-', 'a..b', '192.168.1.1', 'xn--abc', 'sthree-x', 'abc-s3alias', 'abc--ol-s3', 'sp ace', '']) {
      expect(bucketNameProblem(n), n).toBeTypeOf('string');
    }
  });
});

describe('Range', () => {
  it('parses the forms S3 honours and ignores the rest', () => {
    expect(parseRange('bytes=0-4')).toEqual({ kind: 'bounded', first: 0, last: 4 });
    expect(parseRange('bytes=5-')).toEqual({ kind: 'open', first: 5 });
    expect(parseRange('bytes=-3')).toEqual({ kind: 'suffix', length: 3 });
    for (const bad of ['bytes=4-1', 'bytes=-', 'items=0-1', 'bytes=0-1,3-4', 'bytes=a-b', undefined]) expect(parseRange(bad), String(bad)).toBeUndefined();
  });
  it('resolves against the object size; beyond the end is unsatisfiable', () => {
    expect(resolveRange(parseRange('bytes=0-4'), 10)).toEqual({ kind: 'partial', start: 0, end: 4 });
    expect(resolveRange(parseRange('bytes=8-100'), 10)).toEqual({ kind: 'partial', start: 8, end: 9 });
    expect(resolveRange(parseRange('bytes=-3'), 10)).toEqual({ kind: 'partial', start: 7, end: 9 });
    expect(resolveRange(parseRange('bytes=-30'), 10)).toEqual({ kind: 'partial', start: 0, end: 9 });
    expect(resolveRange(parseRange('bytes=5-'), 10)).toEqual({ kind: 'partial', start: 5, end: 9 });
    expect(resolveRange(parseRange('bytes=10-'), 10)).toEqual({ kind: 'unsatisfiable' });
    expect(resolveRange(parseRange('bytes=10-20'), 10)).toEqual({ kind: 'unsatisfiable' });
    expect(resolveRange(parseRange('bytes=-0'), 10)).toEqual({ kind: 'unsatisfiable' });
    expect(resolveRange(parseRange('bytes=0-0'), 0)).toEqual({ kind: 'unsatisfiable' });
    expect(resolveRange(undefined, 10)).toEqual({ kind: 'whole' });
  });
});

describe('conditional requests (S3 precedence)', () => {
  const etag = 'abc123';
  const lm = Date.parse('2024-01-10T00:00:00Z');
  const before = 'Tue, 09 Jan 2024 00:00:00 GMT';
  const after = 'Thu, 11 Jan 2024 00:00:00 GMT';
  it('If-Match true + If-Unmodified-Since false -> proceed', () => {
    expect(evaluateConditions({ ifMatch: '"abc123"', ifUnmodifiedSince: before }, etag, lm)).toEqual({ ok: true });
  });
  it('If-None-Match false + If-Modified-Since true -> 304', () => {
    expect(evaluateConditions({ ifNoneMatch: '"abc123"', ifModifiedSince: before }, etag, lm)).toMatchObject({ ok: false, status: 304 });
  });
  it('single conditions', () => {
    expect(evaluateConditions({ ifMatch: '"other"' }, etag, lm)).toMatchObject({ ok: false, status: 412, condition: 'If-Match' });
    expect(evaluateConditions({ ifMatch: '*' }, etag, lm)).toEqual({ ok: true });
    expect(evaluateConditions({ ifMatch: '"x", "abc123"' }, etag, lm)).toEqual({ ok: true });
    expect(evaluateConditions({ ifNoneMatch: '"other"' }, etag, lm)).toEqual({ ok: true });
    expect(evaluateConditions({ ifUnmodifiedSince: before }, etag, lm)).toMatchObject({ status: 412 });
    expect(evaluateConditions({ ifUnmodifiedSince: after }, etag, lm)).toEqual({ ok: true });
    expect(evaluateConditions({ ifModifiedSince: after }, etag, lm)).toMatchObject({ status: 304 });
    expect(evaluateConditions({ ifModifiedSince: before }, etag, lm)).toEqual({ ok: true });
    // Sub-second Last-Modified compares at HTTP-date resolution.
    expect(evaluateConditions({ ifModifiedSince: 'Wed, 10 Jan 2024 00:00:00 GMT' }, etag, lm + 500)).toMatchObject({ status: 304 });
    expect(evaluateConditions({ ifModifiedSince: 'not a date' }, etag, lm)).toEqual({ ok: true });
  });
  it('If-Match false wins over If-None-Match; copy-source conditions answer 412, not 304', () => {
    expect(evaluateConditions({ ifMatch: '"x"', ifNoneMatch: '"y"' }, etag, lm)).toMatchObject({ status: 412 });
    expect(evaluateConditions({ ifNoneMatch: '"abc123"' }, etag, lm, { copySource: true })).toMatchObject({ status: 412, condition: 'x-amz-copy-source-If-None-Match' });
  });
});

describe('checksums', () => {
  it('match the standard check values of "123456789"', async () => {
    const expectHex: Record<string, string> = {
      crc32: 'cbf43926',
      crc32c: 'e3069283',
      crc64nvme: 'ae8b14860a799888',
      sha1: 'f7c3bc1d808e04732adf679965ccc34ca7ae3441',
      sha256: '15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225',
    };
    for (const alg of CHECKSUM_ALGORITHMS) {
      const h = createChecksum(alg);
      h.update(Buffer.from('1234'));
      h.update(Buffer.from('56789'));
      expect(Buffer.from(await h.digest(), 'base64').toString('hex'), alg).toBe(expectHex[alg]);
    }
  });
  it('checksum headers: one at most, valid base64 of the right size', () => {
    expect(checksumFromHeaders({ 'x-amz-checksum-crc32': 'y/Q5Jg==' })).toEqual({ algorithm: 'crc32', value: 'y/Q5Jg==' });
    expect(checksumFromHeaders({ 'x-amz-checksum-mode': 'ENABLED' })).toBeUndefined();
    expect(() => checksumFromHeaders({ 'x-amz-checksum-crc32': 'y/Q5Jg==', 'x-amz-checksum-sha1': 'x' })).toThrow(S3Error);
    expect(() => checksumFromHeaders({ 'x-amz-checksum-crc32': 'AAAAAAAA' })).toThrow(/invalid/);
    expect(() => checksumFromHeaders({ 'x-amz-checksum-md4': 'AAAA' })).toThrow(S3Error);
  });
});

describe('payload verification and aws-chunked decoding', () => {
  const data = Buffer.from('hello world, hello checksums');
  const crc = async (alg: (typeof CHECKSUM_ALGORITHMS)[number], d: Buffer): Promise<string> => {
    const h = createChecksum(alg);
    h.update(d);
    return h.digest();
  };

  it('holds back the last piece until every check passed', async () => {
    const v = new PayloadVerifier({ expectedLength: 6, checksum: { algorithm: 'crc32', expected: await crc('crc32', Buffer.from('abcdef')) } });
    const emitted: Buffer[] = [];
    v.on('data', (d: Buffer) => emitted.push(d));
    v.write(Buffer.from('abc'));
    v.write(Buffer.from('def'));
    await new Promise((r) => setImmediate(r));
    expect(Buffer.concat(emitted).toString()).toBe('abc');
    v.end();
    await new Promise((r) => v.once('end', r));
    expect(Buffer.concat(emitted).toString()).toBe('abcdef');
  });

  it('a wrong checksum fails before the last byte is released', async () => {
    for (const alg of CHECKSUM_ALGORITHMS) {
      const wrong = await crc(alg, Buffer.from('different'));
      const v = new PayloadVerifier({ checksum: { algorithm: alg, expected: wrong } });
      const emitted: Buffer[] = [];
      await expect(run([data.subarray(0, 10), data.subarray(10)], v, new (await import('node:stream')).PassThrough().on('data', (d: Buffer) => emitted.push(d)))).rejects.toMatchObject({ code: 'BadDigest' });
      expect(Buffer.concat(emitted).length).toBeLessThan(data.length);
    }
  });

  it('short body -> IncompleteBody; wrong signed sha256 -> XAmzContentSHA256Mismatch; wrong MD5 -> BadDigest', async () => {
    await expect(run([data], new PayloadVerifier({ expectedLength: data.length + 1 }))).rejects.toMatchObject({ code: 'IncompleteBody' });
    await expect(run([data], new PayloadVerifier({ sha256Hex: '0'.repeat(64) }))).rejects.toMatchObject({ code: 'XAmzContentSHA256Mismatch' });
    await expect(run([data], new PayloadVerifier({ md5Base64: Buffer.alloc(16).toString('base64') }))).rejects.toMatchObject({ code: 'BadDigest' });
  });

  it('STREAMING-UNSIGNED-PAYLOAD-TRAILER: data, trailer checksum checked for each algorithm', async () => {
    for (const alg of CHECKSUM_ALGORITHMS) {
      const sum = await crc(alg, data);
      const wire = Buffer.concat([Buffer.from('a\r\n'), data.subarray(0, 10), Buffer.from(`\r\n${(data.length - 10).toString(16)}\r\n`), data.subarray(10), Buffer.from(`\r\n0\r\nx-amz-checksum-${alg}:${sum}\r\n\r\n`)]);
      const dec = new AwsChunkedDecoder();
      const v = new PayloadVerifier({ expectedLength: data.length, checksum: { algorithm: alg, fromTrailer: true }, trailers: () => dec.trailers });
      // Byte-at-a-time delivery exercises every parser state boundary.
      const out = await run([...wire].map((b) => Buffer.from([b])), dec, v);
      expect(out.equals(data), alg).toBe(true);
      expect(v.result?.checksum).toEqual({ algorithm: alg, value: sum });
      const bad = Buffer.from(wire.toString('latin1').replace(`:${sum}`, `:${await crc(alg, Buffer.from('x'))}`), 'latin1');
      const dec2 = new AwsChunkedDecoder();
      await expect(run([bad], dec2, new PayloadVerifier({ checksum: { algorithm: alg, fromTrailer: true }, trailers: () => dec2.trailers }))).rejects.toMatchObject({ code: 'BadDigest' });
    }
  });

  it('truncated or malformed aws-chunked bodies -> IncompleteBody', async () => {
    await expect(run([Buffer.from('5\r\nabc')], new AwsChunkedDecoder())).rejects.toMatchObject({ code: 'IncompleteBody' });
    await expect(run([Buffer.from('zz\r\nabc\r\n')], new AwsChunkedDecoder())).rejects.toMatchObject({ code: 'IncompleteBody' });
    await expect(run([Buffer.from('3\r\nabcX\r\n0\r\n\r\n')], new AwsChunkedDecoder())).rejects.toMatchObject({ code: 'IncompleteBody' });
    // Unsigned chunk in a signed stream.
    expect(await run([Buffer.from('3\r\nabc\r\n0\r\n\r\n')], new AwsChunkedDecoder())).toEqual(Buffer.from('abc'));
  });
});

describe('listing helpers', () => {
  it('a marker naming a common prefix resumes after all of it', () => {
    expect(effectiveMarker('photos/', '', '/')).toBe('photos/\u{10FFFF}');
    expect(effectiveMarker('a/b/', 'a/', '/')).toBe('a/b/\u{10FFFF}');
    expect(effectiveMarker('a/b/c', 'a/', '/')).toBe('a/b/c');
    expect(effectiveMarker('photos/', '', undefined)).toBe('photos/');
  });
  it('continuation tokens round-trip; junk is InvalidArgument', () => {
    expect(decodeToken(encodeToken('dir/é ü+/x'))).toBe('dir/é ü+/x');
    expect(() => decodeToken('not valid!')).toThrow(S3Error);
  });
  it("Swift's listing time becomes S3's", () => {
    expect(s3Timestamp('2024-05-01T10:00:00.123456')).toBe('2024-05-01T10:00:00.123Z');
  });
});

describe('addressing', () => {
  it('path-style and virtual-hosted style for a configured domain', () => {
    expect(resolveAddress('/', '127.0.0.1:8080', ['s3.example.com'])).toEqual({});
    expect(resolveAddress('/b', 'h', [])).toEqual({ bucket: 'b' });
    expect(resolveAddress('/b/', 'h', [])).toEqual({ bucket: 'b' });
    expect(resolveAddress('/b/dir/a%20b%2Bc', 'h', [])).toEqual({ bucket: 'b', key: 'dir/a b+c' });
    expect(resolveAddress('/dir/k', 'mybucket.s3.example.com:8080', ['s3.example.com'])).toEqual({ bucket: 'mybucket', key: 'dir/k' });
    expect(resolveAddress('/', 'mybucket.s3.example.com', ['s3.example.com'])).toEqual({ bucket: 'mybucket' });
    expect(resolveAddress('/b/k', 's3.example.com', ['s3.example.com'])).toEqual({ bucket: 'b', key: 'k' });
    expect(() => resolveAddress('/b/%E0%A4%A', 'h', [])).toThrow(S3Error);
  });
});

describe('credentials file', () => {
  it('parses users, both section forms, and rejects bad files', () => {
    const users = parseCredentials('[alice]\naccess_key = AK1\nsecret_key = s1\naccount = AUTH_a\n\n[user:AK2]\nsecret_key = s2\naccount = AUTH_b\n');
    expect(users.get('AK1')).toEqual({ accessKey: 'AK1', secretKey: 's1', account: 'AUTH_a', user: 'alice' });
    expect(users.get('AK2')?.account).toBe('AUTH_b');
    expect(() => parseCredentials('[x]\naccess_key = A\nsecret_key = s\n')).toThrow(/account is required/);
    expect(() => parseCredentials('[x]\naccess_key = A\nsecret_key = s\naccount = .s3_buckets\n')).toThrow(/account/);
    expect(() => parseCredentials('[x]\naccess_key = A\nsecret_key = s\naccount = a\n[y]\naccess_key = A\nsecret_key = t\naccount = b\n')).toThrow(/used by another/);
  });
  it('re-reads the file when it changes, keeps the old users if the new file is bad', () => {
    const dir = mkdtempSync(join(tmpdir(), 's3cred-'));
    const file = join(dir, 'creds.conf');
    writeFileSync(file, '[a]\naccess_key = AK1\nsecret_key = s1\naccount = A\n');
    const store = new CredentialStore(file, silentLogger(), 0);
    expect(store.lookup('AK1')?.account).toBe('A');
    writeFileSync(file, '[b]\naccess_key = AK2\nsecret_key = s2\naccount = B\n');
    utimesSync(file, new Date(), new Date(Date.now() + 5000));
    expect(store.reloadIfChanged()).toBe(true);
    expect(store.lookup('AK1')).toBeUndefined();
    expect(store.lookup('AK2')?.account).toBe('B');
    writeFileSync(file, '[broken]\naccess_key = AK3\n');
    utimesSync(file, new Date(), new Date(Date.now() + 10000));
    expect(store.reloadIfChanged()).toBe(false);
    expect(store.lookup('AK2')?.account).toBe('B');
    store.close();
  });
});

describe('metrics', () => {
  it('renders Prometheus text: counters by method and status class, histogram, backend counters', async () => {
    const { ProxyMetrics } = await import('./metrics.js');
    const m = new ProxyMetrics();
    m.observe({ method: 'GET', status: 200, durationMs: 3, bytesIn: 0, bytesOut: 100 });
    m.observe({ method: 'GET', status: 404, durationMs: 300, bytesIn: 0, bytesOut: 20 });
    m.observe({ method: 'PUT', status: 200, durationMs: 40, bytesIn: 1000, bytesOut: 0 });
    const text = m.render({ backendErrors: 2, handoffWrites: 1 });
    expect(text).toContain('swiftlet_proxy_requests_total{method="GET",status="2xx"} 1');
    expect(text).toContain('swiftlet_proxy_requests_total{method="GET",status="4xx"} 1');
    expect(text).toContain('swiftlet_proxy_request_duration_seconds_bucket{method="GET",le="0.005"} 1');
    expect(text).toContain('swiftlet_proxy_request_duration_seconds_bucket{method="GET",le="0.5"} 2');
    expect(text).toContain('swiftlet_proxy_request_duration_seconds_count{method="PUT"} 1');
    expect(text).toContain('swiftlet_proxy_received_bytes_total 1000');
    expect(text).toContain('swiftlet_proxy_sent_bytes_total 120');
    expect(text).toContain('swiftlet_proxy_backend_backend_errors_total 2');
    expect(text).toContain('swiftlet_proxy_backend_handoff_writes_total 1');
    const rss = Number(/^process_resident_memory_bytes (\d+)$/m.exec(text)?.[1]);
    expect(rss).toBeGreaterThan(10 * 1024 * 1024);
    expect(Number(/^nodejs_heap_size_used_bytes (\d+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
    expect(Number(/^process_cpu_seconds_total ([\d.]+)$/m.exec(text)?.[1])).toBeGreaterThan(0);
  });
});
