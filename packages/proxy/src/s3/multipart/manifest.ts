/**
 * A completed multipart object: its body in the bucket is a small JSON manifest listing the parts
 * (segment names, sizes, MD5s, in order), marked by sysmeta that also holds what HEAD and
 * listings must show: the whole size and S3's ETag (md5 of the concatenated binary part MD5s,
 * "-N"). The container row gets the same through Swift's container update overrides, so
 * ListObjects shows the whole size and S3's ETag without reading the manifest.
 */
import { createHash } from 'node:crypto';

export const SYSMETA_UPLOAD_ID = 'X-Object-Sysmeta-S3-Mpu-Upload-Id';
export const SYSMETA_SIZE = 'X-Object-Sysmeta-S3-Mpu-Size';
export const SYSMETA_PARTS = 'X-Object-Sysmeta-S3-Mpu-Parts';
/** Read by object-metadata's s3Etag(): the ETag S3 clients see. */
export const SYSMETA_ETAG = 'X-Object-Sysmeta-S3-Etag';
export const MANIFEST_CONTENT_TYPE_SYSMETA = 'X-Object-Sysmeta-S3-Mpu-Content-Type';

export interface ManifestPart {
  /** S3 part number. */
  n: number;
  /** Object name in the segments container. */
  name: string;
  bytes: number;
  etag: string;
}

export interface Manifest {
  v: 1;
  container: string;
  uploadId: string;
  parts: ManifestPart[];
}

export function isManifest(backendHeaders: Record<string, string>): boolean {
  return backendHeaders[SYSMETA_UPLOAD_ID.toLowerCase()] !== undefined;
}

export function manifestUploadId(backendHeaders: Record<string, string>): string | undefined {
  return backendHeaders[SYSMETA_UPLOAD_ID.toLowerCase()];
}

export function manifestSize(backendHeaders: Record<string, string>): number {
  return Number(backendHeaders[SYSMETA_SIZE.toLowerCase()] ?? '0');
}

export function manifestPartCount(backendHeaders: Record<string, string>): number {
  return Number(backendHeaders[SYSMETA_PARTS.toLowerCase()] ?? '0');
}

export function multipartEtag(partMd5s: string[]): string {
  const h = createHash('md5');
  for (const m of partMd5s) h.update(Buffer.from(m, 'hex'));
  return `${h.digest('hex')}-${partMd5s.length}`;
}

export function parseManifest(text: string): Manifest {
  const m = JSON.parse(text) as Manifest;
  if (m.v !== 1 || !Array.isArray(m.parts) || typeof m.container !== 'string') throw new Error('not a multipart manifest');
  return m;
}

/** Sysmeta of the manifest object (besides the user's metadata). */
export function manifestHeaders(m: Manifest, etag: string): Record<string, string> {
  const total = m.parts.reduce((s, p) => s + p.bytes, 0);
  return {
    [SYSMETA_UPLOAD_ID]: m.uploadId,
    [SYSMETA_SIZE]: String(total),
    [SYSMETA_PARTS]: String(m.parts.length),
    [SYSMETA_ETAG]: etag,
    'X-Object-Sysmeta-Container-Update-Override-Size': String(total),
    'X-Object-Sysmeta-Container-Update-Override-Etag': etag,
  };
}
