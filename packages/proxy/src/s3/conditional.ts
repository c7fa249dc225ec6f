/**
 * Conditional requests with S3's precedence (RFC 7232 section 6): If-Match decides alone when
 * present (If-Unmodified-Since is then ignored), and If-None-Match decides alone when present
 * (If-Modified-Since is then ignored). So If-Match true + If-Unmodified-Since false -> 200, and
 * If-None-Match false + If-Modified-Since true -> 304. Copy-source conditions answer 412 where
 * a GET would answer 304.
 */

export interface Conditions {
  ifMatch?: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifUnmodifiedSince?: string;
}

export type ConditionOutcome = { ok: true } | { ok: false; status: 304 | 412; condition: string };

function etagList(header: string): string[] {
  return header
    .split(',')
    .map((s) => s.trim().replace(/^W\//, '').replace(/^"(.*)"$/, '$1'))
    .filter((s) => s !== '');
}

function etagMatches(header: string, etag: string): boolean {
  const bare = etag.replace(/^"(.*)"$/, '$1');
  return etagList(header).some((e) => e === '*' || e === bare);
}

function parseHttpDate(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  return Number.isNaN(t) ? undefined : t;
}

/** Evaluates the conditions against an existing object's ETag and Last-Modified (ms). */
export function evaluateConditions(c: Conditions, etag: string, lastModifiedMs: number, opts: { copySource?: boolean } = {}): ConditionOutcome {
  // HTTP dates have one-second resolution.
  const lm = Math.floor(lastModifiedMs / 1000) * 1000;
  const prefix = opts.copySource ? 'x-amz-copy-source-' : '';
  if (c.ifMatch !== undefined) {
    if (!etagMatches(c.ifMatch, etag)) return { ok: false, status: 412, condition: `${prefix}If-Match` };
  } else {
    const ius = parseHttpDate(c.ifUnmodifiedSince);
    if (ius !== undefined && lm > ius) return { ok: false, status: 412, condition: `${prefix}If-Unmodified-Since` };
  }
  if (c.ifNoneMatch !== undefined) {
    if (etagMatches(c.ifNoneMatch, etag)) return { ok: false, status: opts.copySource ? 412 : 304, condition: `${prefix}If-None-Match` };
  } else {
    const ims = parseHttpDate(c.ifModifiedSince);
    if (ims !== undefined && lm <= ims) return { ok: false, status: opts.copySource ? 412 : 304, condition: `${prefix}If-Modified-Since` };
  }
  return { ok: true };
}

export function hasConditions(c: Conditions): boolean {
  return c.ifMatch !== undefined || c.ifNoneMatch !== undefined || c.ifModifiedSince !== undefined || c.ifUnmodifiedSince !== undefined;
}
