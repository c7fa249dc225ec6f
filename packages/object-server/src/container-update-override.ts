/**
 * Swift's container update overrides: a PUT may say what its container row should show instead of
 * the stored body's size/etag/content type (a multipart manifest lists its parts' whole size and
 * S3's ETag). `X-Backend-Container-Update-Override-<Name>` (request only) and
 * `X-Object-Sysmeta-Container-Update-Override-<Name>` (also stored with the object) both replace
 * `X-<Name>` of the update, the sysmeta form winning, as in Swift's object server.
 */
import type { IncomingHttpHeaders } from 'node:http';

const PREFIXES = ['x-backend-container-update-override-', 'x-object-sysmeta-container-update-override-'];

export function withContainerUpdateOverrides(update: Record<string, string>, headers: IncomingHttpHeaders): Record<string, string> {
  const out = { ...update };
  for (const prefix of PREFIXES) {
    for (const [name, value] of Object.entries(headers)) {
      if (!name.startsWith(prefix) || typeof value !== 'string') continue;
      const field = name.slice(prefix.length);
      const target = Object.keys(out).find((k) => k.toLowerCase() === `x-${field}`) ?? `X-${field.replace(/(^|-)([a-z])/g, (_m, d: string, c: string) => d + c.toUpperCase())}`;
      out[target] = value;
    }
  }
  return out;
}
