/**
 * One S3 request as the handlers see it: addressing resolved (path-style or virtual-hosted), the
 * query decoded, headers flattened, and, once authenticated, who sent it.
 */
import type { IncomingMessage } from 'node:http';
import type { Readable } from 'node:stream';
import { S3Error } from './s3-error.js';
import { parseQuery, type AuthResult } from './sigv4.js';

export interface S3Request {
  requestId: string;
  method: string;
  rawPath: string;
  rawQuery: string;
  query: Map<string, string>;
  headers: Record<string, string>;
  bucket: string | undefined;
  key: string | undefined;
  /** `/bucket/key` for error documents. */
  resource: string;
  req: IncomingMessage;
  auth: AuthResult;
  /** Decoded bytes received for an upload (for the access log). */
  bytesIn?: number;
}

export interface S3Response {
  status: number;
  headers?: Record<string, string>;
  body?: string | Buffer | Readable;
  /** Content-Length of a stream body. */
  length?: number;
  /**
   * The stream body's chunks are nobody else's (a backend response passed on as it came): each is
   * freed once the client's socket has taken it (@swiftlet/common pipeReleasing).
   */
  releaseChunks?: boolean;
}

/** Lower-case headers with repeated values joined by ',' (as SigV4 canonicalises them). */
export function flattenHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = (raw[i] as string).toLowerCase();
    const value = raw[i + 1] as string;
    out[name] = out[name] === undefined ? value : `${out[name]},${value}`;
  }
  return out;
}

export function splitUrl(url: string): { rawPath: string; rawQuery: string } {
  const q = url.indexOf('?');
  return q < 0 ? { rawPath: url, rawQuery: '' } : { rawPath: url.slice(0, q), rawQuery: url.slice(q + 1) };
}

export function decodeQuery(rawQuery: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const [k, v] of parseQuery(rawQuery)) if (!m.has(k)) m.set(k, v);
  return m;
}

function decodePath(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new S3Error('InvalidURI', "Couldn't parse the specified URI.", { status: 400 });
  }
}

/**
 * Bucket and key of a request. Virtual-hosted style only when the Host (without port) is
 * `<bucket>.<domain>` for a configured storage domain; otherwise path-style.
 */
export function resolveAddress(rawPath: string, host: string | undefined, storageDomains: string[]): { bucket?: string; key?: string } {
  const hostname = (host ?? '').replace(/:\d+$/, '').toLowerCase();
  const path = decodePath(rawPath);
  for (const domain of storageDomains) {
    if (hostname.endsWith(`.${domain}`)) {
      const bucket = hostname.slice(0, -domain.length - 1);
      const key = path.replace(/^\//, '');
      return key === '' ? { bucket } : { bucket, key };
    }
  }
  const rest = path.replace(/^\//, '');
  if (rest === '') return {};
  const slash = rest.indexOf('/');
  if (slash < 0) return { bucket: rest };
  const key = rest.slice(slash + 1);
  return key === '' ? { bucket: rest.slice(0, slash) } : { bucket: rest.slice(0, slash), key };
}
