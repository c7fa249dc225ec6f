/** Header helpers of the backend: hop-by-hop filtering, ETag normalisation, byte ranges. */
import type { OutgoingHttpHeaders } from 'node:http';

/** Headers never forwarded from the client request to a backend, nor from a backend to the client. */
const HOP_BY_HOP = new Set([
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'te',
  'trailer',
  'upgrade',
  'expect',
  'proxy-authorization',
  'proxy-authenticate',
  'authorization',
  'content-length',
]);

/** Lower-cased copy of the caller's headers without hop-by-hop ones. */
export function forwardableHeaders(headers: Record<string, string> | undefined): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  if (!headers) return out;
  for (const [k, v] of Object.entries(headers)) {
    const key = k.toLowerCase();
    if (HOP_BY_HOP.has(key) || v === undefined) continue;
    out[key] = v;
  }
  return out;
}

/** A backend answer's headers for the client, lower-case, without hop-by-hop ones (length kept). */
export function answerHeaders(headers: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (k === 'content-length' || !HOP_BY_HOP.has(k)) out[k] = v;
  }
  if (out['etag'] !== undefined) out['etag'] = unquoteEtag(out['etag']);
  return out;
}

export function unquoteEtag(etag: string): string {
  return etag.length >= 2 && etag.startsWith('"') && etag.endsWith('"') ? etag.slice(1, -1) : etag;
}

/** `bytes s-e/total` of a 206 answer; undefined for anything else (e.g. multipart/byteranges). */
export function parseContentRange(value: string | undefined): { start: number; end: number; total: number } | undefined {
  if (!value) return undefined;
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value.trim());
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), total: m[3] === '*' ? -1 : Number(m[3]) };
}
