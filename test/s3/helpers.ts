/**
 * Shared by the S3 integration tests: a whole cluster (rings, storage servers, proxy) from the
 * cluster launcher, SDK clients per user, a raw SigV4-signed HTTP request (signed by the AWS SDK's
 * signer) for what the SDK will not send, and a look at the devices for stored replicas.
 */
import { createHash, createHmac } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { startCluster, type Cluster, type ClusterOptions, type ClusterUser } from '@swiftlet/cluster';

export const ALICE: ClusterUser = { accessKey: 'AKIAALICE0000000001', secretKey: 'alice-secret/key+1', account: 'AUTH_alice' };
export const BOB: ClusterUser = { accessKey: 'AKIABOB00000000002', secretKey: 'bob-secret-key-2', account: 'AUTH_bob' };
export const STORAGE_DOMAIN = 's3.swiftlet.test';

export interface S3Cluster {
  cluster: Cluster;
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export async function startS3Cluster(opts: Partial<ClusterOptions> = {}): Promise<S3Cluster> {
  const dir = await mkdtemp(join(tmpdir(), 'swiftlet-s3-'));
  const cluster = await startCluster({
    dir,
    nodes: 3,
    replicas: 3,
    partPower: 6,
    daemons: false,
    users: [ALICE, BOB],
    ...opts,
    extraConf: {
      proxy: { s3api: { storage_domain: STORAGE_DOMAIN, credentials_reload_interval: 0.2, verify_buffer_size: 65536 } },
      ...(opts.extraConf ?? {}),
    },
  });
  return {
    cluster,
    endpoint: cluster.endpoint,
    port: cluster.s3Port,
    async stop() {
      await cluster.stop();
      if (process.env['SWIFTLET_KEEP_TEST_DIR'] !== '1') await rm(dir, { recursive: true, force: true });
    },
  };
}

export function s3Client(endpoint: string, user: ClusterUser = ALICE, extra: Record<string, unknown> = {}): S3Client {
  return new S3Client({
    region: 'us-east-1',
    endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: user.accessKey, secretAccessKey: user.secretKey },
    ...extra,
  });
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

export interface RawRequest {
  method: string;
  /** Encoded path, e.g. `/bucket/key`. */
  path: string;
  query?: Record<string, string>;
  headers?: Record<string, string>;
  /** The body on the wire, in pieces (sent as they are). */
  body?: Buffer | Buffer[];
  /** x-amz-content-sha256 to sign; default: the SHA-256 of the body. */
  payloadHash?: string;
  user?: ClusterUser;
  /** Host header (virtual-hosted tests); default 127.0.0.1:<port>. */
  host?: string;
  signingDate?: Date;
  /** No Authorization at all. */
  anonymous?: boolean;
  /** Close the request after this many body bytes although more were declared. */
  truncateAt?: number;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  /** The Authorization signature sent (the seed of chunk signatures). */
  signature?: string;
}

export function sha256hex(b: Buffer | string): string {
  return createHash('sha256').update(b).digest('hex');
}

export async function signRequest(port: number, r: RawRequest): Promise<{ headers: Record<string, string>; path: string }> {
  const pieces = r.body === undefined ? [] : Array.isArray(r.body) ? r.body : [r.body];
  const whole = Buffer.concat(pieces);
  const host = r.host ?? `127.0.0.1:${port}`;
  const headers: Record<string, string> = { host, 'x-amz-content-sha256': r.payloadHash ?? sha256hex(whole), ...(r.headers ?? {}) };
  if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) headers['content-length'] = String(whole.length);
  const req = new HttpRequest({ method: r.method, protocol: 'http:', hostname: host.split(':')[0]!, port, path: r.path, query: r.query ?? {}, headers });
  const user = r.user ?? ALICE;
  const signer = new SignatureV4({ credentials: { accessKeyId: user.accessKey, secretAccessKey: user.secretKey }, region: 'us-east-1', service: 's3', sha256: NodeSha256, uriEscapePath: false });
  const signed = r.anonymous ? req : ((await signer.sign(req, { signingDate: r.signingDate ?? new Date() })) as HttpRequest);
  const qs = Object.entries(r.query ?? {})
    .map(([k, v]) => (v === '' ? encodeURIComponent(k) : `${encodeURIComponent(k)}=${encodeURIComponent(v)}`))
    .join('&');
  return { headers: signed.headers as Record<string, string>, path: qs === '' ? r.path : `${r.path}?${qs}` };
}

export async function rawRequest(port: number, r: RawRequest): Promise<RawResponse> {
  const { headers, path } = await signRequest(port, r);
  const pieces = r.body === undefined ? [] : Array.isArray(r.body) ? r.body : [r.body];
  const signature = /Signature=([0-9a-f]{64})/.exec(headers['authorization'] ?? '')?.[1];
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: r.method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), ...(signature ? { signature } : {}) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    let sent = 0;
    for (const p of pieces) {
      if (r.truncateAt !== undefined && sent + p.length >= r.truncateAt) {
        req.write(p.subarray(0, r.truncateAt - sent));
        // The client goes away mid-body: no answer can arrive.
        setTimeout(() => {
          req.destroy();
          resolve({ status: 0, headers: {}, body: '' });
        }, 200);
        return;
      }
      req.write(p);
      sent += p.length;
    }
    req.end();
  });
}

/** The S3 error code of an XML error body. */
export function errorCode(body: string): string | undefined {
  return /<Code>([^<]+)<\/Code>/.exec(body)?.[1];
}

/** Every `.data` file on the cluster's devices whose metadata names /account/bucket/key. */
export async function storedReplicas(cluster: Cluster, account: string, bucket: string, key: string, opts: { prefix?: boolean } = {}): Promise<string[]> {
  const needle = JSON.stringify(`/${account}/${bucket}/${key}`).slice(1, -1);
  const pattern = opts.prefix ? `"name":"${needle}` : `"name":"${needle}"`;
  const out: string[] = [];
  const root = join(cluster.dir, 'srv');
  const files = (await readdir(root, { recursive: true })).filter((f) => f.endsWith('.data'));
  for (const f of files) {
    const text = (await readFile(join(root, f))).toString('utf8');
    if (text.includes(pattern)) out.push(f);
  }
  return out;
}

/** aws-chunked framing of `data` in `chunkSize` pieces, unsigned, with optional trailers. */
export function awsChunked(data: Buffer, chunkSize: number, trailers: Record<string, string> = {}): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += chunkSize) {
    const c = data.subarray(i, i + chunkSize);
    parts.push(Buffer.from(`${c.length.toString(16)}\r\n`), c, Buffer.from('\r\n'));
  }
  parts.push(Buffer.from('0\r\n'));
  for (const [k, v] of Object.entries(trailers)) parts.push(Buffer.from(`${k}:${v}\r\n`));
  parts.push(Buffer.from('\r\n'));
  return Buffer.concat(parts);
}
