import { createHash, createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { describe, expect, it } from 'vitest';
import { AwsChunkedDecoder } from './aws-chunked.js';
import { S3Error } from './s3-error.js';
import { ChunkSignatureChain, verifyRequest, type Credential, type SignableRequest, type VerifyOptions } from './sigv4.js';

const AK = 'AKIAIOSFODNN7EXAMPLE';
const SK = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const users: Record<string, Credential> = { [AK]: { accessKey: AK, secretKey: SK, account: 'AUTH_test', user: 'test' } };
const DOC_NOW = new Date('2013-05-24T00:00:00Z');

function opts(now = DOC_NOW, extra: Partial<VerifyOptions> = {}): VerifyOptions {
  return { region: 'us-east-1', maxClockSkewS: 900, now, lookup: (k) => users[k], ...extra };
}

function s3Code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof S3Error) return err.code;
    throw err;
  }
  return 'no error';
}

/** Node's crypto in the shape the SDK signer wants (HMAC when given a secret). */
class NodeSha256 {
  private h;
  constructor(secret?: Uint8Array | string) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', Buffer.from(secret as Uint8Array));
  }
  update(data: Uint8Array | string): void {
    this.h.update(typeof data === 'string' ? Buffer.from(data) : data);
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.h.digest());
  }
  reset(): void {}
}

function sdkSigner(region = 'us-east-1'): SignatureV4 {
  return new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: SK }, region, service: 's3', sha256: NodeSha256, uriEscapePath: false, applyChecksum: false });
}

/** Our view of a request the SDK signed. */
function fromSdk(req: HttpRequest): SignableRequest {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) headers[k.toLowerCase()] = v;
  const query = Object.entries(req.query ?? {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v.map((x) => [k, x] as const) : [[k, v] as const]))
    .map(([k, v]) => (v === null ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v as string)}`))
    .join('&');
  return { method: req.method, rawPath: req.path, rawQuery: query, headers };
}

describe('SigV4: AWS documented examples (S3 API reference, sig-v4-header-based-auth)', () => {
  it('GET Object with Range', () => {
    const req: SignableRequest = {
      method: 'GET',
      rawPath: '/test.txt',
      rawQuery: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        range: 'bytes=0-9',
        'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        'x-amz-date': '20130524T000000Z',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41',
      },
    };
    const auth = verifyRequest(req, opts());
    expect(auth.credential.account).toBe('AUTH_test');
    expect(auth.mode).toBe('sha256');
    expect(auth.payloadSha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  });

  it('PUT Object (key with $, signed payload)', () => {
    const req: SignableRequest = {
      method: 'PUT',
      rawPath: '/test%24file.text',
      rawQuery: '',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        date: 'Fri, 24 May 2013 00:00:00 GMT',
        'x-amz-date': '20130524T000000Z',
        'x-amz-storage-class': 'REDUCED_REDUNDANCY',
        'x-amz-content-sha256': '44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd',
      },
    };
    expect(verifyRequest(req, opts()).mode).toBe('sha256');
    // The same request with the `$` left unencoded on the wire signs the same.
    expect(verifyRequest({ ...req, rawPath: '/test$file.text' }, opts()).mode).toBe('sha256');
  });

  it('GET Bucket lifecycle (value-less query parameter)', () => {
    const req: SignableRequest = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'lifecycle',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-date': '20130524T000000Z',
        'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543',
      },
    };
    expect(verifyRequest(req, opts()).credential.user).toBe('test');
  });

  it('Get Bucket (List Objects) with query parameters in any order', () => {
    const req: SignableRequest = {
      method: 'GET',
      rawPath: '/',
      rawQuery: 'prefix=J&max-keys=2',
      headers: {
        host: 'examplebucket.s3.amazonaws.com',
        'x-amz-date': '20130524T000000Z',
        'x-amz-content-sha256': 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
        authorization:
          'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7',
      },
    };
    expect(verifyRequest(req, opts()).mode).toBe('sha256');
  });

  it('presigned GET (query string auth), expiry and validity', () => {
    const req: SignableRequest = {
      method: 'GET',
      rawPath: '/test.txt',
      rawQuery:
        'X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404',
      headers: { host: 'examplebucket.s3.amazonaws.com' },
    };
    const auth = verifyRequest(req, opts(new Date('2013-05-24T12:00:00Z')));
    expect(auth.presigned).toBe(true);
    expect(auth.mode).toBe('unsigned');
    // One second after X-Amz-Date + X-Amz-Expires: expired -> AccessDenied.
    expect(s3Code(() => verifyRequest(req, opts(new Date('2013-05-25T00:00:01Z'))))).toBe('AccessDenied');
    // Dated further in the future than the allowed skew: not valid yet.
    expect(s3Code(() => verifyRequest(req, opts(new Date('2013-05-23T23:00:00Z'))))).toBe('AccessDenied');
    // Header and query authentication at once.
    expect(s3Code(() => verifyRequest({ ...req, headers: { ...req.headers, authorization: 'AWS4-HMAC-SHA256 Credential=x' } }, opts(new Date('2013-05-24T12:00:00Z'))))).toBe('InvalidArgument');
    // A tampered signature.
    expect(s3Code(() => verifyRequest({ ...req, rawQuery: req.rawQuery.replace('aeeed9', 'aeeed8') }, opts()))).toBe('SignatureDoesNotMatch');
  });

  it('STREAMING-AWS4-HMAC-SHA256-PAYLOAD: seed and chained chunk signatures', async () => {
    const headers = {
      host: 's3.amazonaws.com',
      'x-amz-date': '20130524T000000Z',
      'x-amz-storage-class': 'REDUCED_REDUNDANCY',
      'x-amz-content-sha256': 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD',
      'content-encoding': 'aws-chunked',
      'x-amz-decoded-content-length': '66560',
      'content-length': '66824',
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9',
    };
    const auth = verifyRequest({ method: 'PUT', rawPath: '/examplebucket/chunkObject.txt', rawQuery: '', headers }, opts());
    expect(auth.mode).toBe('streaming-signed');
    const sigs = [
      'ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648',
      '0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497',
      'b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9',
    ];
    const body = Buffer.concat([
      Buffer.from(`10000;chunk-signature=${sigs[0]}\r\n`),
      Buffer.alloc(65536, 'a'),
      Buffer.from(`\r\n400;chunk-signature=${sigs[1]}\r\n`),
      Buffer.alloc(1024, 'a'),
      Buffer.from(`\r\n0;chunk-signature=${sigs[2]}\r\n\r\n`),
    ]);
    expect(body.length).toBe(66824);
    const decode = async (wire: Buffer): Promise<Buffer> => {
      const out: Buffer[] = [];
      const dec = new AwsChunkedDecoder({ chain: new ChunkSignatureChain(auth.chunkSigning) });
      // Fed in odd-sized pieces so that headers and data straddle reads.
      const pieces: Buffer[] = [];
      for (let i = 0; i < wire.length; i += 1000) pieces.push(wire.subarray(i, i + 1000));
      await pipeline(Readable.from(pieces), dec, async function* (src: AsyncIterable<Buffer>) {
        for await (const p of src) out.push(p);
      });
      return Buffer.concat(out);
    };
    const decoded = await decode(body);
    expect(decoded.length).toBe(66560);
    expect(decoded.every((b) => b === 0x61)).toBe(true);
    // One changed byte in the second chunk breaks its signature; nothing of that chunk is emitted.
    const tampered = Buffer.from(body);
    tampered[65536 + 200] = 0x62;
    await expect(decode(tampered)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    // Swapping the order of signatures breaks the chain even though each is "valid" somewhere.
    const reordered = Buffer.from(body.toString('latin1').replace(sigs[2]!, sigs[1]!), 'latin1');
    await expect(decode(reordered)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
  });

  it('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER: chunk and trailer signatures', async () => {
    // The documented trailer example uses the same request parameters as the chunked one.
    const chain = new ChunkSignatureChain({
      signingKey: createHmac('sha256', createHmac('sha256', createHmac('sha256', createHmac('sha256', `AWS4${SK}`).update('20130524').digest()).update('us-east-1').digest()).update('s3').digest()).update('aws4_request').digest(),
      amzDate: '20130524T000000Z',
      scope: '20130524/us-east-1/s3/aws4_request',
      seedSignature: '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e',
    });
    const chunk1 = createHash('sha256').update(Buffer.alloc(65536, 'a')).digest('hex');
    const chunk2 = createHash('sha256').update(Buffer.alloc(1024, 'a')).digest('hex');
    const empty = createHash('sha256').update('').digest('hex');
    expect(chain.next(chunk1)).toBe('b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2');
    expect(chain.next(chunk2)).toBe('1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7');
    expect(chain.next(empty)).toBe('2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992');
    expect(chain.trailer('x-amz-checksum-crc32c:sOO8/Q==\n')).toBe('d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435');
  });
});

describe('STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER bodies through the decoder', () => {
  const ctx = {
    signingKey: createHmac('sha256', createHmac('sha256', createHmac('sha256', createHmac('sha256', `AWS4${SK}`).update('20130524').digest()).update('us-east-1').digest()).update('s3').digest()).update('aws4_request').digest(),
    amzDate: '20130524T000000Z',
    scope: '20130524/us-east-1/s3/aws4_request',
    seedSignature: '106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e',
  };
  const wire = (trailerValue: string, breakTrailerSig = false): Buffer => {
    const chain = new ChunkSignatureChain(ctx);
    const parts: Buffer[] = [];
    for (const c of [Buffer.alloc(65536, 'a'), Buffer.alloc(1024, 'a'), Buffer.alloc(0)]) {
      const sig = chain.next(createHash('sha256').update(c).digest('hex'));
      parts.push(Buffer.from(`${c.length.toString(16)};chunk-signature=${sig}\r\n`), c, c.length > 0 ? Buffer.from('\r\n') : Buffer.alloc(0));
    }
    let tsig = chain.trailer(`x-amz-checksum-crc32c:${trailerValue}\n`);
    if (breakTrailerSig) tsig = tsig.replace(/^./, (ch) => (ch === '0' ? '1' : '0'));
    parts.push(Buffer.from(`x-amz-checksum-crc32c:${trailerValue}\r\nx-amz-trailer-signature:${tsig}\r\n\r\n`));
    return Buffer.concat(parts);
  };
  const decode = async (body: Buffer): Promise<{ data: Buffer; trailers: Record<string, string> }> => {
    const dec = new AwsChunkedDecoder({ chain: new ChunkSignatureChain(ctx), signedTrailer: true });
    const out: Buffer[] = [];
    await pipeline(Readable.from([body]), dec, async function* (src: AsyncIterable<Buffer>) {
      for await (const p of src) out.push(p);
    });
    return { data: Buffer.concat(out), trailers: dec.trailers };
  };

  it('verifies chunks and the signed trailer (the documented example signatures)', async () => {
    const body = wire('sOO8/Q==');
    expect(body.toString('latin1')).toContain('x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435');
    const { data, trailers } = await decode(body);
    expect(data.length).toBe(66560);
    expect(trailers).toEqual({ 'x-amz-checksum-crc32c': 'sOO8/Q==' });
  });

  it('a changed trailer value or a bad trailer signature -> SignatureDoesNotMatch; a missing one too', async () => {
    const tampered = Buffer.from(wire('sOO8/Q==').toString('latin1').replace('x-amz-checksum-crc32c:sOO8/Q==', 'x-amz-checksum-crc32c:AAAAAA=='), 'latin1');
    await expect(decode(tampered)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    await expect(decode(wire('sOO8/Q==', true))).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
    const unsignedTrailer = Buffer.from(wire('sOO8/Q==').toString('latin1').replace(/x-amz-trailer-signature:[0-9a-f]+\r\n/, ''), 'latin1');
    await expect(decode(unsignedTrailer)).rejects.toMatchObject({ code: 'SignatureDoesNotMatch' });
  });
});

describe('SigV4: signatures produced by the AWS SDK signer (@smithy/signature-v4)', () => {
  const now = new Date();
  const cases: Array<{ name: string; method: string; path: string; query?: Record<string, string>; headers?: Record<string, string>; body?: string }> = [
    { name: 'plain GET', method: 'GET', path: '/bucket/key.txt' },
    { name: 'key with spaces, unicode and reserved characters', method: 'PUT', path: `/bucket/${encodeURIComponent("dir/a b+c!'()*~ é€😀.txt").replace(/%2F/g, '/')}`, body: 'hello' },
    { name: 'list with prefix, delimiter and encoding-type', method: 'GET', path: '/bucket', query: { 'list-type': '2', prefix: 'a b/é', delimiter: '/', 'encoding-type': 'url', 'continuation-token': 'x+y=' } },
    { name: 'extra signed headers with odd spacing', method: 'PUT', path: '/bucket/k', headers: { 'x-amz-meta-note': '  two   spaces ', 'content-type': 'text/plain' }, body: 'x' },
  ];
  for (const c of cases) {
    it(`header auth: ${c.name}`, async () => {
      const payloadHash = createHash('sha256').update(c.body ?? '').digest('hex');
      const req = new HttpRequest({
        method: c.method,
        protocol: 'http:',
        hostname: '127.0.0.1',
        port: 8080,
        path: c.path,
        query: c.query ?? {},
        headers: { host: '127.0.0.1:8080', 'x-amz-content-sha256': payloadHash, ...(c.headers ?? {}) },
        body: c.body,
      });
      const signed = (await sdkSigner().sign(req, { signingDate: now })) as HttpRequest;
      const auth = verifyRequest(fromSdk(signed), opts(now));
      expect(auth.payloadSha256).toBe(payloadHash);
      // Any change to a signed part breaks it.
      const tampered = fromSdk(signed);
      tampered.rawPath += 'x';
      expect(s3Code(() => verifyRequest(tampered, opts(now)))).toBe('SignatureDoesNotMatch');
    });
  }

  const client = new S3Client({ region: 'us-east-1', endpoint: 'http://127.0.0.1:8080', forcePathStyle: true, credentials: { accessKeyId: AK, secretAccessKey: SK } });
  const fromUrl = (url: string, method = 'GET'): SignableRequest => {
    const u = new URL(url);
    return { method, rawPath: u.pathname, rawQuery: u.search.slice(1), headers: { host: u.host } };
  };

  it('presigned GET and PUT URLs from the S3 presigner, with expiry', async () => {
    const get = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'bucket', Key: 'dir/some key+é.txt', ResponseContentType: 'text/plain' }), { expiresIn: 60 });
    const signedAt = Date.now();
    const auth = verifyRequest(fromUrl(get), opts(new Date(signedAt)));
    expect(auth.presigned).toBe(true);
    expect(auth.mode).toBe('unsigned');
    expect(s3Code(() => verifyRequest(fromUrl(get), opts(new Date(signedAt + 62_000))))).toBe('AccessDenied');
    const put = await getSignedUrl(client, new PutObjectCommand({ Bucket: 'bucket', Key: 'k' }), { expiresIn: 60 });
    expect(verifyRequest(fromUrl(put, 'PUT'), opts(new Date(signedAt))).presigned).toBe(true);
    // Used with another method than the one signed.
    expect(s3Code(() => verifyRequest(fromUrl(put, 'DELETE'), opts(new Date(signedAt))))).toBe('SignatureDoesNotMatch');
  });

  it('presigned URL asking for more than 7 days -> AuthorizationQueryParametersError', async () => {
    const url = await getSignedUrl(client, new GetObjectCommand({ Bucket: 'b', Key: 'k' }), { expiresIn: 604800 });
    expect(verifyRequest(fromUrl(url), opts(new Date())).presigned).toBe(true);
    const q = fromUrl(url);
    q.rawQuery = q.rawQuery.replace('X-Amz-Expires=604800', 'X-Amz-Expires=604801');
    expect(s3Code(() => verifyRequest(q, opts(new Date())))).toBe('AuthorizationQueryParametersError');
  });

  it('clock skew beyond max_clock_skew -> RequestTimeTooSkewed; within -> accepted', async () => {
    const signedAt = new Date(now.getTime() - 16 * 60_000);
    const req = new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', path: '/', headers: { host: '127.0.0.1', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const signed = (await sdkSigner().sign(req, { signingDate: signedAt })) as HttpRequest;
    expect(s3Code(() => verifyRequest(fromSdk(signed), opts(now)))).toBe('RequestTimeTooSkewed');
    expect(verifyRequest(fromSdk(signed), opts(now, { maxClockSkewS: 17 * 60 })).mode).toBe('unsigned');
    const early = (await sdkSigner().sign(req, { signingDate: new Date(now.getTime() + 16 * 60_000) })) as HttpRequest;
    expect(s3Code(() => verifyRequest(fromSdk(early), opts(now)))).toBe('RequestTimeTooSkewed');
  });

  it('unknown key, wrong secret, wrong region, missing x-amz-content-sha256', async () => {
    const base = new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', path: '/', headers: { host: '127.0.0.1', 'x-amz-content-sha256': 'UNSIGNED-PAYLOAD' } });
    const other = new SignatureV4({ credentials: { accessKeyId: 'NOPE', secretAccessKey: SK }, region: 'us-east-1', service: 's3', sha256: NodeSha256, uriEscapePath: false });
    expect(s3Code(() => verifyRequest(fromSdk(base), opts(now)))).toBe('AccessDenied');
    const unknown = (await other.sign(base, { signingDate: now })) as HttpRequest;
    expect(s3Code(() => verifyRequest(fromSdk(unknown), opts(now)))).toBe('InvalidAccessKeyId');
    const wrongSecret = new SignatureV4({ credentials: { accessKeyId: AK, secretAccessKey: 'bad' }, region: 'us-east-1', service: 's3', sha256: NodeSha256, uriEscapePath: false });
    const bad = (await wrongSecret.sign(base, { signingDate: now })) as HttpRequest;
    expect(s3Code(() => verifyRequest(fromSdk(bad), opts(now)))).toBe('SignatureDoesNotMatch');
    const eu = (await sdkSigner('eu-west-1').sign(base, { signingDate: now })) as HttpRequest;
    expect(s3Code(() => verifyRequest(fromSdk(eu), opts(now)))).toBe('AuthorizationHeaderMalformed');
    const noSha = new HttpRequest({ method: 'GET', protocol: 'http:', hostname: '127.0.0.1', path: '/', headers: { host: '127.0.0.1' } });
    const signedNoSha = (await sdkSigner().sign(noSha, { signingDate: now })) as HttpRequest;
    expect(s3Code(() => verifyRequest(fromSdk(signedNoSha), opts(now)))).toBe('InvalidRequest');
  });
});
