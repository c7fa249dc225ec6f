/**
 * AWS Signature Version 4 as S3 verifies it: the canonical request, the string to sign, the
 * derived signing key, the Authorization header and presigned-query forms, clock skew and expiry,
 * and the chained signatures of `aws-chunked` bodies. Signatures are compared in constant time.
 *
 * The canonical URI is rebuilt from the decoded path with AWS's strict encoding (every byte but
 * `A-Za-z0-9-_.~` as %XX, `/` kept), because clients differ in which characters they leave
 * unencoded on the wire; the path exactly as received is tried second, for signers that sign the
 * wire form.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { S3Error } from './s3-error.js';

export const ALGORITHM = 'AWS4-HMAC-SHA256';
export const UNSIGNED_PAYLOAD = 'UNSIGNED-PAYLOAD';
export const STREAMING_SIGNED = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD';
export const STREAMING_SIGNED_TRAILER = 'STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER';
export const STREAMING_UNSIGNED_TRAILER = 'STREAMING-UNSIGNED-PAYLOAD-TRAILER';
export const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
/** The longest validity a presigned URL may ask for (7 days). */
export const MAX_PRESIGN_EXPIRES_S = 604800;

export type PayloadMode = 'unsigned' | 'sha256' | 'streaming-signed' | 'streaming-signed-trailer' | 'streaming-unsigned-trailer';

export interface Credential {
  accessKey: string;
  secretKey: string;
  account: string;
  user: string;
}

/** The parts of an HTTP request that SigV4 covers. */
export interface SignableRequest {
  method: string;
  /** The path exactly as received (still percent-encoded), without the query. */
  rawPath: string;
  /** The query string as received, without `?`. */
  rawQuery: string;
  /** Lower-case header names; repeated headers joined with ','. */
  headers: Record<string, string>;
}

export interface VerifyOptions {
  region: string;
  service?: string;
  maxClockSkewS: number;
  now?: Date;
  lookup: (accessKey: string) => Credential | undefined;
}

export interface AuthResult {
  credential: Credential;
  mode: PayloadMode;
  /** Hex SHA-256 of the whole payload when `mode === 'sha256'`. */
  payloadSha256?: string;
  /** What aws-chunked bodies need to check their chunk signatures. */
  chunkSigning: ChunkSigningContext;
  presigned: boolean;
}

export interface ChunkSigningContext {
  signingKey: Buffer;
  amzDate: string;
  scope: string;
  seedSignature: string;
}

const UNRESERVED = /[A-Za-z0-9\-_.~]/;

/** AWS's URI encoding: UTF-8 bytes, every byte but unreserved characters as %XX (upper-case hex). */
export function uriEncode(text: string, encodeSlash = true): string {
  let out = '';
  for (const ch of text) {
    if (UNRESERVED.test(ch) || (!encodeSlash && ch === '/')) out += ch;
    else for (const b of Buffer.from(ch, 'utf8')) out += `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/** Percent-decoding that leaves malformed escapes as they are (never throws). */
export function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text.replace(/%([0-9A-Fa-f]{2})/g, (_m, h: string) => String.fromCharCode(parseInt(h, 16)));
  }
}

export function canonicalUri(rawPath: string): string {
  const path = rawPath === '' ? '/' : rawPath;
  return path
    .split('/')
    .map((seg) => uriEncode(safeDecode(seg)))
    .join('/');
}

/** Query pairs decoded (a `+` stays a plus: S3's signers encode spaces as %20). */
export function parseQuery(rawQuery: string): [string, string][] {
  if (rawQuery === '') return [];
  return rawQuery
    .split('&')
    .filter((p) => p !== '')
    .map((p) => {
      const i = p.indexOf('=');
      return i < 0 ? [safeDecode(p), ''] : [safeDecode(p.slice(0, i)), safeDecode(p.slice(i + 1))];
    });
}

export function canonicalQuery(pairs: [string, string][], exclude?: string): string {
  return pairs
    .filter(([k]) => k !== exclude)
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
}

function canonicalHeaderValue(v: string): string {
  return v.trim().replace(/\s+/g, ' ');
}

export function canonicalRequest(
  req: SignableRequest,
  signedHeaders: string[],
  payloadHash: string,
  opts: { uri?: string; excludeQuery?: string } = {},
): string {
  const headerLines = signedHeaders.map((h) => `${h}:${canonicalHeaderValue(req.headers[h] ?? '')}\n`).join('');
  return [
    req.method,
    opts.uri ?? canonicalUri(req.rawPath),
    canonicalQuery(parseQuery(req.rawQuery), opts.excludeQuery),
    headerLines,
    signedHeaders.join(';'),
    payloadHash,
  ].join('\n');
}

export function sha256Hex(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

export function stringToSign(amzDate: string, scope: string, canonicalRequestText: string): string {
  return `${ALGORITHM}\n${amzDate}\n${scope}\n${sha256Hex(canonicalRequestText)}`;
}

const keyCache = new Map<string, Buffer>();

/** kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request"), cached per day. */
export function signingKey(secretKey: string, date: string, region: string, service: string): Buffer {
  const id = `${date}/${region}/${service}/${secretKey}`;
  const hit = keyCache.get(id);
  if (hit) return hit;
  const kDate = createHmac('sha256', `AWS4${secretKey}`).update(date).digest();
  const kRegion = createHmac('sha256', kDate).update(region).digest();
  const kService = createHmac('sha256', kRegion).update(service).digest();
  const key = createHmac('sha256', kService).update('aws4_request').digest();
  if (keyCache.size > 1000) keyCache.clear();
  keyCache.set(id, key);
  return key;
}

export function hmacHex(key: Buffer, data: string): string {
  return createHmac('sha256', key).update(data).digest('hex');
}

/** Constant-time comparison of two hex signatures (length differences leak nothing useful). */
export function signaturesEqual(expected: string, provided: string): boolean {
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(provided.toLowerCase(), 'utf8');
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}

/** `20130524T000000Z` -> Date, or undefined. */
export function parseAmzDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const d = new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
  return Number.isNaN(d.getTime()) ? undefined : d;
}

export function toAmzDate(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

interface ParsedAuth {
  accessKey: string;
  date: string;
  region: string;
  service: string;
  terminal: string;
  signedHeaders: string[];
  signature: string;
}

function malformedHeader(msg: string): S3Error {
  return new S3Error('AuthorizationHeaderMalformed', `The authorization header is malformed; ${msg}`);
}

export function parseAuthorizationHeader(value: string): ParsedAuth {
  if (!value.startsWith(`${ALGORITHM} `)) {
    if (value.startsWith('AWS ')) {
      throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    throw malformedHeader(`the authorization mechanism is not ${ALGORITHM}.`);
  }
  const fields: Record<string, string> = {};
  for (const part of value.slice(ALGORITHM.length + 1).split(',')) {
    const p = part.trim();
    const i = p.indexOf('=');
    if (i > 0) fields[p.slice(0, i)] = p.slice(i + 1);
  }
  const cred = fields['Credential'];
  const sh = fields['SignedHeaders'];
  const sig = fields['Signature'];
  if (!cred || !sh || !sig) throw malformedHeader('the authorization header requires Credential, SignedHeaders and Signature.');
  return { ...parseCredential(cred, malformedHeader), signedHeaders: sh.split(';'), signature: sig };
}

function parseCredential(cred: string, fail: (msg: string) => S3Error): Omit<ParsedAuth, 'signedHeaders' | 'signature'> {
  const parts = cred.split('/');
  if (parts.length !== 5) throw fail(`the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`);
  const [accessKey, date, region, service, terminal] = parts as [string, string, string, string, string];
  return { accessKey, date, region, service, terminal };
}

function checkScope(p: Omit<ParsedAuth, 'signedHeaders' | 'signature'>, amzDate: string, opts: VerifyOptions, fail: (msg: string) => S3Error): void {
  const service = opts.service ?? 's3';
  if (!/^\d{8}$/.test(p.date) || p.date !== amzDate.slice(0, 8)) {
    throw fail(`Invalid credential date "${p.date}". This date is not the same as X-Amz-Date: "${amzDate.slice(0, 8)}".`);
  }
  if (p.region !== opts.region) {
    const e = fail(`the region '${p.region}' is wrong; expecting '${opts.region}'`);
    e.extra['Region'] = opts.region;
    throw e;
  }
  if (p.service !== service) throw fail(`incorrect service "${p.service}". This endpoint belongs to "${service}".`);
  if (p.terminal !== 'aws4_request') throw fail(`incorrect terminal "${p.terminal}". This endpoint uses "aws4_request".`);
}

function payloadModeOf(hash: string): { mode: PayloadMode; sha?: string } {
  switch (hash) {
    case UNSIGNED_PAYLOAD:
      return { mode: 'unsigned' };
    case STREAMING_SIGNED:
      return { mode: 'streaming-signed' };
    case STREAMING_SIGNED_TRAILER:
      return { mode: 'streaming-signed-trailer' };
    case STREAMING_UNSIGNED_TRAILER:
      return { mode: 'streaming-unsigned-trailer' };
    default:
      if (/^[0-9a-fA-F]{64}$/.test(hash)) return { mode: 'sha256', sha: hash.toLowerCase() };
      throw new S3Error('InvalidArgument', 'x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.', {
        extra: { ArgumentName: 'x-amz-content-sha256', ArgumentValue: hash },
      });
  }
}

function lookupCredential(accessKey: string, opts: VerifyOptions): Credential {
  const cred = opts.lookup(accessKey);
  if (!cred) {
    throw new S3Error('InvalidAccessKeyId', 'The AWS Access Key Id you provided does not exist in our records.', {
      extra: { AWSAccessKeyId: accessKey },
    });
  }
  return cred;
}

/** Checks the signature over both canonical URI forms; returns the one that matched. */
function matchSignature(
  req: SignableRequest,
  signedHeaders: string[],
  payloadHash: string,
  amzDate: string,
  scope: string,
  key: Buffer,
  provided: string,
  credential: Credential,
  excludeQuery?: string,
): void {
  const uris = [canonicalUri(req.rawPath)];
  if (!uris.includes(req.rawPath || '/')) uris.push(req.rawPath || '/');
  let first: { creq: string; sts: string } | undefined;
  for (const uri of uris) {
    const creq = canonicalRequest(req, signedHeaders, payloadHash, { uri, ...(excludeQuery ? { excludeQuery } : {}) });
    const sts = stringToSign(amzDate, scope, creq);
    if (signaturesEqual(hmacHex(key, sts), provided)) return;
    first ??= { creq, sts };
  }
  throw new S3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided. Check your key and signing method.', {
    extra: {
      AWSAccessKeyId: credential.accessKey,
      StringToSign: first?.sts ?? '',
      SignatureProvided: provided,
      CanonicalRequest: first?.creq ?? '',
    },
  });
}

function checkSkew(date: Date, now: Date, maxSkewS: number): void {
  if (Math.abs(now.getTime() - date.getTime()) > maxSkewS * 1000) {
    throw new S3Error('RequestTimeTooSkewed', 'The difference between the request time and the current time is too large.', {
      extra: {
        RequestTime: toAmzDate(date),
        ServerTime: now.toISOString(),
        MaxAllowedSkewMilliseconds: String(maxSkewS * 1000),
      },
    });
  }
}

/** True if the request carries any form of SigV4 (header or query). */
export function hasAuth(req: SignableRequest): boolean {
  return req.headers['authorization'] !== undefined || /(^|&)X-Amz-Signature=/.test(req.rawQuery) || /(^|&)X-Amz-Credential=/.test(req.rawQuery);
}

/**
 * Verifies a request's SigV4 signature (header or presigned query form). Throws the S3Error a
 * client should see; returns who signed and how the payload is to be checked.
 */
export function verifyRequest(req: SignableRequest, opts: VerifyOptions): AuthResult {
  const now = opts.now ?? new Date();
  const service = opts.service ?? 's3';
  const authz = req.headers['authorization'];
  if (authz !== undefined && /(^|&)X-Amz-(Signature|Algorithm|Credential)=/.test(req.rawQuery)) {
    throw new S3Error('InvalidArgument', 'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified', {
      extra: { ArgumentName: 'Authorization', ArgumentValue: authz.slice(0, 40) },
    });
  }
  if (authz !== undefined) {
    const p = parseAuthorizationHeader(authz);
    const amzDateText = req.headers['x-amz-date'];
    let date: Date | undefined;
    let amzDate: string;
    if (amzDateText !== undefined) {
      date = parseAmzDate(amzDateText);
      amzDate = amzDateText;
    } else if (req.headers['date'] !== undefined) {
      const d = new Date(req.headers['date']);
      date = Number.isNaN(d.getTime()) ? undefined : d;
      amzDate = date ? toAmzDate(date) : '';
    } else {
      throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    }
    if (!date) throw new S3Error('AccessDenied', 'AWS authentication requires a valid Date or x-amz-date header');
    checkScope(p, amzDate, opts, malformedHeader);
    const credential = lookupCredential(p.accessKey, opts);
    if (!p.signedHeaders.includes('host')) {
      throw malformedHeader('the SignedHeaders must include host.');
    }
    const contentSha = req.headers['x-amz-content-sha256'];
    if (contentSha === undefined) {
      throw new S3Error('InvalidRequest', 'Missing required header for this request: x-amz-content-sha256');
    }
    const { mode, sha } = payloadModeOf(contentSha);
    const scope = `${p.date}/${p.region}/${service}/aws4_request`;
    const key = signingKey(credential.secretKey, p.date, p.region, service);
    matchSignature(req, p.signedHeaders, contentSha, amzDate, scope, key, p.signature, credential);
    // Skew is checked after the signature, as S3 does, so that an unsigned date cannot probe it.
    checkSkew(date, now, opts.maxClockSkewS);
    return {
      credential,
      mode,
      ...(sha ? { payloadSha256: sha } : {}),
      chunkSigning: { signingKey: key, amzDate, scope, seedSignature: p.signature.toLowerCase() },
      presigned: false,
    };
  }
  return verifyPresigned(req, opts, now, service);
}

function queryError(msg: string): S3Error {
  return new S3Error('AuthorizationQueryParametersError', msg);
}

function verifyPresigned(req: SignableRequest, opts: VerifyOptions, now: Date, service: string): AuthResult {
  const q = new Map(parseQuery(req.rawQuery));
  const alg = q.get('X-Amz-Algorithm');
  const credText = q.get('X-Amz-Credential');
  const amzDate = q.get('X-Amz-Date');
  const expiresText = q.get('X-Amz-Expires');
  const signedHeadersText = q.get('X-Amz-SignedHeaders');
  const signature = q.get('X-Amz-Signature');
  if (alg === undefined && credText === undefined && signature === undefined) {
    if (q.has('AWSAccessKeyId') || q.has('Signature')) {
      throw new S3Error('InvalidRequest', 'The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.');
    }
    throw new S3Error('AccessDenied', 'Access Denied');
  }
  if (alg !== ALGORITHM) throw queryError('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"');
  if (!credText || !amzDate || !expiresText || !signedHeadersText || !signature) {
    throw queryError('Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.');
  }
  const date = parseAmzDate(amzDate);
  if (!date) throw queryError(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`);
  if (!/^\d+$/.test(expiresText)) throw queryError('X-Amz-Expires should be a number');
  const expiresS = Number(expiresText);
  if (expiresS > MAX_PRESIGN_EXPIRES_S) throw queryError('X-Amz-Expires must be less than a week (in seconds) that is 604800');
  const p = parseCredential(credText, (m) => queryError(`Error parsing the X-Amz-Credential parameter; ${m}`));
  checkScope(p, amzDate, opts, (m) => queryError(`Error parsing the X-Amz-Credential parameter; ${m}`));
  const credential = lookupCredential(p.accessKey, opts);
  const signedHeaders = signedHeadersText.split(';');
  if (!signedHeaders.includes('host')) throw queryError('X-Amz-SignedHeaders must include host.');
  const payloadHash = q.get('X-Amz-Content-Sha256') ?? req.headers['x-amz-content-sha256'] ?? UNSIGNED_PAYLOAD;
  const { mode, sha } = payloadModeOf(payloadHash);
  const scope = `${p.date}/${p.region}/${service}/aws4_request`;
  const key = signingKey(credential.secretKey, p.date, p.region, service);
  matchSignature(req, signedHeaders, payloadHash, amzDate, scope, key, signature, credential, 'X-Amz-Signature');
  if (date.getTime() - now.getTime() > opts.maxClockSkewS * 1000) {
    throw new S3Error('AccessDenied', 'Request is not valid yet');
  }
  if (now.getTime() > date.getTime() + expiresS * 1000) {
    throw new S3Error('AccessDenied', 'Request has expired', {
      extra: {
        'X-Amz-Expires': expiresText,
        Expires: new Date(date.getTime() + expiresS * 1000).toISOString(),
        ServerTime: now.toISOString(),
      },
    });
  }
  return {
    credential,
    mode,
    ...(sha ? { payloadSha256: sha } : {}),
    chunkSigning: { signingKey: key, amzDate, scope, seedSignature: signature.toLowerCase() },
    presigned: true,
  };
}

/**
 * The chain of chunk signatures of an `aws-chunked` body: each chunk's signature signs the previous
 * signature (the request's signature for the first chunk) and the SHA-256 of the chunk's data.
 */
export class ChunkSignatureChain {
  private previous: string;

  constructor(private readonly ctx: ChunkSigningContext) {
    this.previous = ctx.seedSignature;
  }

  /** The signature the next chunk must carry; advances the chain. */
  next(chunkSha256Hex: string): string {
    const sts = `AWS4-HMAC-SHA256-PAYLOAD\n${this.ctx.amzDate}\n${this.ctx.scope}\n${this.previous}\n${EMPTY_SHA256}\n${chunkSha256Hex}`;
    this.previous = hmacHex(this.ctx.signingKey, sts);
    return this.previous;
  }

  /** The signature of the trailing headers (canonical `name:value\n` lines). */
  trailer(canonicalTrailers: string): string {
    const sts = `AWS4-HMAC-SHA256-TRAILER\n${this.ctx.amzDate}\n${this.ctx.scope}\n${this.previous}\n${sha256Hex(canonicalTrailers)}`;
    this.previous = hmacHex(this.ctx.signingKey, sts);
    return this.previous;
  }
}
