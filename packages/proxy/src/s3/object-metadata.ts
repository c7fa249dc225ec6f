/**
 * How S3 object metadata is kept on the Swift side, both ways:
 *   x-amz-meta-<name>          <-> X-Object-Meta-<name>
 *   Content-Type, Cache-Control, Content-Disposition, Content-Encoding, Expires  <-> the same
 *   Content-Language           <-> X-Object-Sysmeta-S3-Content-Language
 *   x-amz-checksum-<alg>       <-> X-Object-Sysmeta-S3-Checksum-<Alg> (known before the PUT), or
 *                                  X-Object-Transient-Sysmeta-S3-Checksum-<Alg> (from a trailer, by POST)
 */
import { CHECKSUM_ALGORITHMS, type ChecksumAlgorithm } from './checksums.js';
import { S3Error } from './s3-error.js';

/** S3's limit on user metadata (names and values, in bytes). */
export const MAX_USER_METADATA_BYTES = 2048;
export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';

const PLAIN_HEADERS = ['content-type', 'cache-control', 'content-disposition', 'content-encoding', 'expires'] as const;
const SYSMETA_PREFIX = 'x-object-sysmeta-s3-';
const TRANSIENT_PREFIX = 'x-object-transient-sysmeta-s3-';

function checksumSysmetaName(algorithm: ChecksumAlgorithm): string {
  return `X-Object-Sysmeta-S3-Checksum-${algorithm[0]!.toUpperCase()}${algorithm.slice(1)}`;
}

/** Backend headers describing the object, from an S3 PUT (or a CopyObject with REPLACE). */
export function backendMetadataFromRequest(h: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  let userBytes = 0;
  for (const [name, value] of Object.entries(h)) {
    if (name.startsWith('x-amz-meta-')) {
      const metaName = name.slice('x-amz-meta-'.length);
      if (metaName === '' || !/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(metaName)) {
        throw new S3Error('InvalidArgument', `Invalid metadata name ${name}`, { extra: { ArgumentName: name, ArgumentValue: value } });
      }
      userBytes += Buffer.byteLength(metaName) + Buffer.byteLength(value);
      out[`X-Object-Meta-${metaName}`] = value;
    }
  }
  if (userBytes > MAX_USER_METADATA_BYTES) {
    throw new S3Error('MetadataTooLarge', 'Your metadata headers exceed the maximum allowed metadata size.', {
      extra: { Size: String(userBytes), MaxSizeAllowed: String(MAX_USER_METADATA_BYTES) },
    });
  }
  for (const name of PLAIN_HEADERS) {
    let value = h[name];
    if (value === undefined) continue;
    if (name === 'content-encoding') {
      // aws-chunked describes the transfer, not the object.
      value = value
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '' && s.toLowerCase() !== 'aws-chunked')
        .join(',');
      if (value === '') continue;
    }
    out[name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())] = value;
  }
  out['Content-Type'] ??= DEFAULT_CONTENT_TYPE;
  if (h['content-language'] !== undefined) out['X-Object-Sysmeta-S3-Content-Language'] = h['content-language'];
  return out;
}

export function checksumMetadata(c: { algorithm: ChecksumAlgorithm; value: string } | undefined): Record<string, string> {
  return c ? { [checksumSysmetaName(c.algorithm)]: c.value } : {};
}

/** Backend headers of the stored object that a copy carries over (metadata directive COPY). */
export function copyableMetadata(backend: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(backend)) {
    if (name.startsWith('x-object-meta-')) out[`X-Object-Meta-${name.slice('x-object-meta-'.length)}`] = value;
    else if ((PLAIN_HEADERS as readonly string[]).includes(name)) out[name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())] = value;
    else if (name === `${SYSMETA_PREFIX}content-language`) out['X-Object-Sysmeta-S3-Content-Language'] = value;
  }
  return out;
}

/** The stored additional checksum of an object, from backend headers. */
export function storedChecksum(backend: Record<string, string>): { algorithm: ChecksumAlgorithm; value: string } | undefined {
  for (const algorithm of CHECKSUM_ALGORITHMS) {
    const v = backend[`${SYSMETA_PREFIX}checksum-${algorithm}`] ?? backend[`${TRANSIENT_PREFIX}checksum-${algorithm}`];
    if (v !== undefined) return { algorithm, value: v };
  }
  return undefined;
}

/**
 * A checksum that arrived in a trailer of a streamed body is known only after the PUT went out;
 * it is attached by a POST (transient sysmeta, which Swift's POST may set) that also repeats the
 * object's metadata, since a POST replaces it.
 */
export function checksumPostHeaders(meta: Record<string, string>, c: { algorithm: ChecksumAlgorithm; value: string }): Record<string, string> {
  return { ...meta, [`X-Object-Transient-Sysmeta-S3-Checksum-${c.algorithm[0]!.toUpperCase()}${c.algorithm.slice(1)}`]: c.value };
}

/** The ETag S3 clients see: the multipart one (`md5(md5s)-N`) if the object was assembled from parts. */
export function s3Etag(backend: Record<string, string>): string {
  return (backend['x-object-sysmeta-s3-etag'] ?? backend['etag'] ?? '').replace(/^"(.*)"$/, '$1');
}

/** Swift's X-Timestamp / Last-Modified of a backend answer, in ms. */
export function lastModifiedMs(backend: Record<string, string>): number {
  const ts = backend['x-timestamp'];
  if (ts !== undefined && /^\d+(\.\d+)?/.test(ts)) return Math.floor(Number.parseFloat(ts) * 1000);
  const lm = backend['last-modified'];
  const t = lm ? Date.parse(lm) : NaN;
  return Number.isNaN(t) ? Date.now() : t;
}

export function httpDate(ms: number): string {
  return new Date(ms).toUTCString();
}

/** S3 response headers of an object (GET/HEAD), from the backend's headers. */
export function objectResponseHeaders(backend: Record<string, string>, opts: { checksumMode: boolean; whole: boolean }): Record<string, string> {
  const out: Record<string, string> = {};
  out['ETag'] = `"${s3Etag(backend)}"`;
  out['Last-Modified'] = httpDate(lastModifiedMs(backend));
  out['Accept-Ranges'] = 'bytes';
  for (const [name, value] of Object.entries(backend)) {
    if (name.startsWith('x-object-meta-')) out[`x-amz-meta-${name.slice('x-object-meta-'.length)}`] = value;
  }
  for (const name of PLAIN_HEADERS) {
    const v = backend[name];
    if (v !== undefined) out[name.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())] = v;
  }
  const lang = backend[`${SYSMETA_PREFIX}content-language`];
  if (lang !== undefined) out['Content-Language'] = lang;
  if (opts.checksumMode && opts.whole) {
    const c = storedChecksum(backend);
    if (c) {
      out[`x-amz-checksum-${c.algorithm}`] = c.value;
      out['x-amz-checksum-type'] = 'FULL_OBJECT';
    }
  }
  return out;
}

/** `response-*` query overrides of a GET (signed requests only, as S3). */
export const RESPONSE_OVERRIDES: Readonly<Record<string, string>> = Object.freeze({
  'response-content-type': 'Content-Type',
  'response-content-language': 'Content-Language',
  'response-expires': 'Expires',
  'response-cache-control': 'Cache-Control',
  'response-content-disposition': 'Content-Disposition',
  'response-content-encoding': 'Content-Encoding',
});
