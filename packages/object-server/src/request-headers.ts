/**
 * Request headers of the object API: timestamps, policy, lengths, and the metadata a PUT or POST
 * stores (Swift's constraints and title-cased header names).
 */
import type { IncomingHttpHeaders, IncomingMessage } from 'node:http';
import { BadRequestError, ServiceUnavailableError, StoreError, type SwiftConf, Timestamp } from '@swiftlet/common';
import { parseCrc32 } from '@swiftlet/diskfile';

export const MAX_META_NAME_LENGTH = 128;
export const MAX_META_VALUE_LENGTH = 256;
export const MAX_META_COUNT = 90;
export const MAX_META_OVERALL_SIZE = 4096;
export const MAX_HEADER_SIZE = 8192;
/** Swift's MAX_FILE_SIZE: 5 GiB + 2 bytes. */
export const MAX_FILE_SIZE = 5368709122;

const USER_META_PREFIX = 'x-object-meta-';
const SYSMETA_PREFIXES = ['x-object-sysmeta-', 'x-object-transient-sysmeta-'];

export class LengthRequiredError extends StoreError {
  constructor() {
    super(411, 'LengthRequired', 'Missing Content-Length or Transfer-Encoding: chunked');
  }
}

export class RequestEntityTooLargeError extends StoreError {
  constructor(message: string) {
    super(413, 'RequestEntityTooLarge', message);
  }
}

export function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Node hands header values over as latin-1 (one char per byte); clients send UTF-8. */
export function headerText(raw: string): string {
  // eslint-free fast path: pure ASCII needs no re-decoding.
  return /^[\x00-\x7f]*$/.test(raw) ? raw : Buffer.from(raw, 'latin1').toString('utf8');
}

/** The inverse of headerText, for values going back out on the wire. */
export function wireText(text: string): string {
  return /^[\x00-\x7f]*$/.test(text) ? text : Buffer.from(text, 'utf8').toString('latin1');
}

/** Python's str.title(): what Swift's header dicts store (`x-object-meta-foo` -> `X-Object-Meta-Foo`). */
export function titleCase(name: string): string {
  let out = '';
  let prevLetter = false;
  for (const ch of name) {
    const isLetter = ch.toLowerCase() !== ch.toUpperCase();
    out += isLetter ? (prevLetter ? ch.toLowerCase() : ch.toUpperCase()) : ch;
    prevLetter = isLetter;
  }
  return out;
}

export function requireTimestamp(headers: IncomingHttpHeaders): Timestamp {
  const raw = header(headers, 'x-timestamp');
  if (raw === undefined || raw.trim() === '') throw new BadRequestError('Missing X-Timestamp header');
  const ts = Timestamp.tryParse(raw);
  if (!ts) throw new BadRequestError(`X-Timestamp should be a UNIX timestamp float value; was ${JSON.stringify(raw)}`);
  return ts;
}

export function policyIndex(headers: IncomingHttpHeaders, swiftConf: SwiftConf): number {
  const raw = header(headers, 'x-backend-storage-policy-index');
  if (raw === undefined || raw.trim() === '') return 0;
  const n = /^\s*\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isInteger(n) || !swiftConf.policy(n)) {
    throw new ServiceUnavailableError(`No policy with index ${raw.trim()}`);
  }
  return n;
}

function isChunked(headers: IncomingHttpHeaders): boolean {
  const te = header(headers, 'transfer-encoding');
  return te !== undefined && te.toLowerCase().includes('chunked');
}

/**
 * The declared body length: Content-Length, or for a chunked body Swift's
 * X-Backend-Obj-Content-Length when given (the body must then be exactly that long), else
 * undefined; 400/411/413 otherwise.
 */
export function bodyLength(headers: IncomingHttpHeaders): number | undefined {
  const chunked = isChunked(headers);
  const name = chunked ? 'x-backend-obj-content-length' : 'content-length';
  const cl = header(headers, name);
  if (cl === undefined) {
    if (chunked) return undefined;
    throw new LengthRequiredError();
  }
  if (!/^\d+$/.test(cl.trim())) throw new BadRequestError(`Invalid ${chunked ? 'X-Backend-Obj-Content-Length' : 'Content-Length'}: ${JSON.stringify(cl)}`);
  const n = Number(cl);
  if (n > MAX_FILE_SIZE) throw new RequestEntityTooLargeError(`Your request is too large (max ${MAX_FILE_SIZE} bytes)`);
  return n;
}

/** Swift's check_metadata for objects (checked on PUT, as Swift does). */
export function checkMetadataLimits(headers: IncomingHttpHeaders): void {
  let count = 0;
  let size = 0;
  for (const [key, value] of Object.entries(headers)) {
    const v = Array.isArray(value) ? value.join(',') : (value ?? '');
    if (v.length > MAX_HEADER_SIZE) throw new BadRequestError(`Header value too long: ${key.slice(0, MAX_META_NAME_LENGTH)}`);
    if (!key.startsWith(USER_META_PREFIX)) continue;
    const name = key.slice(USER_META_PREFIX.length);
    if (name === '') throw new BadRequestError('Metadata name cannot be empty');
    count += 1;
    // Node's header strings hold one char per byte, so lengths here are byte lengths, as in Swift.
    size += name.length + v.length;
    if (name.length > MAX_META_NAME_LENGTH) throw new BadRequestError(`Metadata name too long: ${titleCase(key)}`);
    if (v.length > MAX_META_VALUE_LENGTH) {
      throw new BadRequestError(`Metadata value longer than ${MAX_META_VALUE_LENGTH}: ${titleCase(key)}`);
    }
    if (count > MAX_META_COUNT) throw new BadRequestError(`Too many metadata items; max ${MAX_META_COUNT}`);
    if (size > MAX_META_OVERALL_SIZE) throw new BadRequestError(`Total metadata too large; max ${MAX_META_OVERALL_SIZE}`);
  }
}

/**
 * `X-Delete-At` (an integer epoch) or `X-Delete-After` (seconds from `now`): the epoch to store,
 * undefined if neither is given; 400 if malformed or already past.
 */
export function deleteAt(headers: IncomingHttpHeaders, now: number): number | undefined {
  const after = header(headers, 'x-delete-after');
  const at = header(headers, 'x-delete-at');
  let value: number | undefined;
  if (after !== undefined) {
    if (!/^\s*\d+\s*$/.test(after)) throw new BadRequestError('Non-integer X-Delete-After');
    value = Math.floor(now) + Number(after);
  } else if (at !== undefined) {
    if (!/^\s*\d+(\.\d*)?\s*$/.test(at)) throw new BadRequestError('Non-integer X-Delete-At');
    value = Math.floor(Number(at));
  }
  if (value !== undefined && value <= now) throw new BadRequestError('X-Delete-At in past');
  return value;
}

/**
 * The metadata a PUT stores (or a POST stores in its .meta): user meta, sysmeta, the allowed
 * headers, and Content-Type; names title-cased, values UTF-8.
 */
export function storedMetadata(headers: IncomingHttpHeaders, allowedHeaders: ReadonlySet<string>): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const keep =
      key.startsWith(USER_META_PREFIX) || SYSMETA_PREFIXES.some((p) => key.startsWith(p)) || allowedHeaders.has(key);
    if (!keep || key === 'x-delete-at') continue;
    meta[titleCase(key)] = headerText(Array.isArray(value) ? value.join(',') : value);
  }
  return meta;
}

/** The ETag a client asked us to check: Swift compares it verbatim (an upper-case ETag fails, 422). */
export function expectedEtag(headers: IncomingHttpHeaders): string | undefined {
  const raw = header(headers, 'etag');
  if (raw === undefined) return undefined;
  const v = raw.trim();
  return v.startsWith('"') && v.endsWith('"') && v.length >= 2 ? v.slice(1, -1) : v;
}

/**
 * `X-Backend-Checksum-Trailer: md5,crc32` (sent by Swiftlet's proxy with a chunked body): the
 * body's MD5 and CRC-32 as the proxy computed them follow it, as the trailers X-Backend-Etag and
 * X-Backend-Body-Crc32. The object server then checks only the CRC-32 (an eighth of MD5's CPU)
 * and stores that MD5 as the ETag, so a body going to three replicas is hashed with MD5 once, not
 * three times. Swift's object servers each hash with MD5 (its proxy sends no checksum). Returns
 * the trailer's reader, to call after the body has ended; undefined without the header.
 */
export function checksumTrailer(req: IncomingMessage): (() => { md5: string; crc32: number }) | undefined {
  const declared = header(req.headers, 'x-backend-checksum-trailer');
  if (declared === undefined) return undefined;
  if (declared.trim().toLowerCase() !== 'md5,crc32') {
    throw new BadRequestError(`X-Backend-Checksum-Trailer ${JSON.stringify(declared)}: expected md5,crc32`);
  }
  if (!isChunked(req.headers)) throw new BadRequestError('X-Backend-Checksum-Trailer needs a chunked body');
  return () => {
    const md5 = req.trailers['x-backend-etag'];
    if (md5 === undefined || !/^[0-9a-f]{32}$/.test(md5)) throw new BadRequestError('Missing or malformed X-Backend-Etag trailer');
    const raw = req.trailers['x-backend-body-crc32'];
    const crc32 = raw === undefined ? null : parseCrc32(raw);
    if (crc32 === null) throw new BadRequestError('Missing or malformed X-Backend-Body-Crc32 trailer');
    return { md5, crc32 };
  };
}
