/**
 * Reading Swift's request values: timestamps, integers, metadata headers and listing parameters,
 * each refused with the status code and message Swift gives.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { BadRequestError, PreconditionFailedError, Timestamp } from '@swiftlet/common';
import type { ListingParams } from '../db/listing.js';
import type { OwnerInfo } from '../db/row-db.js';

export const LISTING_LIMIT = 10_000;

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A required timestamp header: 400 "Missing timestamp" / "Invalid timestamp" like Swift. */
export function requiredTimestamp(headers: IncomingHttpHeaders, name = 'x-timestamp'): Timestamp {
  const v = header(headers, name);
  if (v === undefined || v === '') throw new BadRequestError(`Missing ${name === 'x-timestamp' ? 'timestamp' : name}`);
  const ts = Timestamp.tryParse(v);
  if (ts === undefined) throw new BadRequestError(`Invalid ${name}: ${v}`);
  return ts;
}

export function optionalTimestamp(headers: IncomingHttpHeaders, name: string): Timestamp | undefined {
  const v = header(headers, name);
  if (v === undefined || v === '') return undefined;
  const ts = Timestamp.tryParse(v);
  if (ts === undefined) throw new BadRequestError(`Invalid ${name}: ${v}`);
  return ts;
}

export function nonNegativeInt(headers: IncomingHttpHeaders, name: string, fallback?: number): number {
  const v = header(headers, name);
  if (v === undefined || v === '') {
    if (fallback !== undefined) return fallback;
    throw new BadRequestError(`Missing ${name}`);
  }
  if (!/^\d+$/.test(v.trim()) || !Number.isSafeInteger(Number(v))) throw new BadRequestError(`Invalid ${name}: ${v}`);
  return Number(v);
}

export function requiredString(headers: IncomingHttpHeaders, name: string): string {
  const v = header(headers, name);
  if (v === undefined) throw new BadRequestError(`Missing ${name}`);
  return v;
}

/** The metadata headers a container or account keeps (Swift's `X-Container-Meta-*` and friends). */
export function isMetadataHeader(kind: 'container' | 'account', name: string): boolean {
  if (kind === 'container') {
    return (
      name.startsWith('x-container-meta-') ||
      name.startsWith('x-container-sysmeta-') ||
      ['x-container-read', 'x-container-write', 'x-container-sync-to', 'x-container-sync-key', 'x-versions-location', 'x-history-location'].includes(name)
    );
  }
  return name.startsWith('x-account-meta-') || name.startsWith('x-account-sysmeta-') || name === 'x-account-access-control';
}

/** Per key, the newer timestamp wins; an empty value deletes the key (kept as [\"\", ts] for merging). */
export function updateMetadata(info: OwnerInfo, kind: 'container' | 'account', headers: IncomingHttpHeaders, ts: Timestamp): boolean {
  let changed = false;
  for (const [name, raw] of Object.entries(headers)) {
    if (!isMetadataHeader(kind, name)) continue;
    const value = (Array.isArray(raw) ? raw[0] : raw) ?? '';
    const old = info.meta[name];
    if (old !== undefined && Timestamp.parse(old[1]).compare(ts) >= 0) continue;
    info.meta[name] = [value, ts.internal];
    changed = true;
  }
  return changed;
}

export function metadataHeaders(info: OwnerInfo): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, [value]] of Object.entries(info.meta)) if (value !== '') out[name] = value;
  return out;
}

/** Listing parameters; 412 for a limit over 10,000 or a bad delimiter, as Swift answers. */
export function listingParams(query: Record<string, string | string[] | undefined>): ListingParams {
  const q = (k: string): string => {
    const v = query[k];
    const s = (Array.isArray(v) ? v[0] : v) ?? '';
    if (s.includes('\0')) throw new PreconditionFailedError('Invalid UTF8 or contains NULL');
    return s;
  };
  let limit = LISTING_LIMIT;
  const given = q('limit');
  if (given !== '' && /^\d+$/.test(given)) {
    limit = Number(given);
    if (limit > LISTING_LIMIT) throw new PreconditionFailedError(`Maximum limit is ${LISTING_LIMIT}`);
  }
  const delimiter = q('delimiter');
  if (delimiter !== '') {
    const cps = [...delimiter];
    if (cps.length > 1 || (cps[0] as string).codePointAt(0)! > 254) throw new PreconditionFailedError('Bad delimiter');
  }
  const reverse = ['true', '1', 'yes', 'on', 't', 'y'].includes(q('reverse').toLowerCase());
  return { prefix: q('prefix'), delimiter, marker: q('marker'), endMarker: q('end_marker'), limit, reverse };
}

export type ListingFormat = 'json' | 'xml' | 'plain';

/** `format=` wins, then the Accept header, as in Swift's get_listing_content_type. */
export function listingFormat(query: Record<string, string | string[] | undefined>, accept: string | undefined): ListingFormat {
  const f = query['format'];
  const format = ((Array.isArray(f) ? f[0] : f) ?? '').toLowerCase();
  if (format === 'json') return 'json';
  if (format === 'xml') return 'xml';
  if (format === 'plain' || format === 'text') return 'plain';
  const a = (accept ?? '').toLowerCase();
  if (a.includes('application/json')) return 'json';
  if (a.includes('application/xml') || a.includes('text/xml')) return 'xml';
  return 'plain';
}

export const CONTENT_TYPES: Record<ListingFormat, string> = {
  json: 'application/json; charset=utf-8',
  xml: 'application/xml; charset=utf-8',
  plain: 'text/plain; charset=utf-8',
};

const STORED_TS = /^(\d{10})\.(\d{5})(?:_[0-9a-f]{16})?$/;
let lastSecond = -1;
let lastSecondIso = '';

/**
 * Swift's Timestamp.isoformat: `2026-11-21T13:37:31.123450` (UTC, microseconds, no zone). Rows
 * store timestamps in the internal form, so the digits are sliced; the date part of the last
 * second is cached (a listing page mostly repeats seconds).
 */
export function isoformat(ts: string): string {
  const m = STORED_TS.exec(ts);
  let second: number;
  let micros: string;
  if (m !== null) {
    second = Number(m[1]);
    micros = `${m[2] as string}0`;
  } else {
    const t = Timestamp.parse(ts);
    second = Math.floor(t.ticks / 100_000);
    micros = String((t.ticks % 100_000) * 10).padStart(6, '0');
  }
  if (second !== lastSecond) {
    lastSecond = second;
    lastSecondIso = new Date(second * 1000).toISOString().slice(0, 19);
  }
  return `${lastSecondIso}.${micros}`;
}

export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);
}
