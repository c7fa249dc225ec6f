/**
 * Conditional GET/HEAD (If-Match, If-None-Match, If-Modified-Since, If-Unmodified-Since) and
 * Range parsing, as Swift's swob answers them.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { header } from './request-headers.js';

function etagList(raw: string): string[] {
  return raw
    .split(',')
    .map((s) => s.trim())
    .map((s) => (s.startsWith('W/') ? s.slice(2) : s))
    .map((s) => (s.length >= 2 && s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s))
    .filter((s) => s !== '');
}

function httpDateSeconds(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const ms = Date.parse(raw);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / 1000);
}

/**
 * What the conditional headers make of an existing object: 200 (go on), 304 or 412.
 * `lastModifiedS` is Last-Modified in whole seconds (Swift rounds the timestamp up).
 */
export function evaluateConditions(headers: IncomingHttpHeaders, etag: string, lastModifiedS: number): 200 | 304 | 412 {
  const ifMatch = header(headers, 'if-match');
  if (ifMatch !== undefined) {
    const list = etagList(ifMatch);
    if (!list.includes('*') && !list.includes(etag)) return 412;
  }
  const ifNoneMatch = header(headers, 'if-none-match');
  if (ifNoneMatch !== undefined) {
    const list = etagList(ifNoneMatch);
    if (list.includes('*') || list.includes(etag)) return 304;
  }
  if (ifNoneMatch === undefined) {
    const ims = httpDateSeconds(header(headers, 'if-modified-since'));
    if (ims !== undefined && lastModifiedS <= ims) return 304;
  }
  if (ifMatch === undefined) {
    const ius = httpDateSeconds(header(headers, 'if-unmodified-since'));
    if (ius !== undefined && lastModifiedS > ius) return 412;
  }
  return 200;
}

export interface ByteRange {
  start: number;
  /** inclusive */
  end: number;
}

/**
 * Parses `Range: bytes=...` against an object of `length` bytes.
 * undefined: no usable Range header (serve the whole object); []: unsatisfiable (416);
 * otherwise the satisfiable ranges in request order.
 */
export function parseRange(raw: string | undefined, length: number): ByteRange[] | undefined {
  if (raw === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(.+)$/i.exec(raw);
  if (!m) return undefined;
  const specs = (m[1] as string).split(',').map((s) => s.trim());
  const parsed: { first?: number; last?: number; suffix?: number }[] = [];
  for (const spec of specs) {
    const r = /^(\d*)-(\d*)$/.exec(spec);
    if (!r) return undefined;
    const [, a, b] = r as unknown as [string, string, string];
    if (a === '' && b === '') return undefined;
    if (a === '') parsed.push({ suffix: Number(b) });
    else {
      const first = Number(a);
      const last = b === '' ? undefined : Number(b);
      if (last !== undefined && last < first) return undefined; // syntactically invalid: ignored
      parsed.push(last === undefined ? { first } : { first, last });
    }
  }
  // Swift ignores a header with absurdly many ranges rather than doing the work.
  if (parsed.length > 50) return undefined;
  const out: ByteRange[] = [];
  for (const p of parsed) {
    if (p.suffix !== undefined) {
      if (p.suffix === 0) continue;
      if (length === 0) return undefined; // Swift: bytes=-N on an empty object -> 200 with nothing
      out.push({ start: Math.max(0, length - p.suffix), end: length - 1 });
    } else {
      const first = p.first as number;
      if (first >= length) continue;
      out.push({ start: first, end: Math.min(p.last ?? length - 1, length - 1) });
    }
  }
  return out;
}
