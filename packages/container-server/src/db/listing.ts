/**
 * Listings (Swift's `list_objects_iter` / `list_containers_iter`): live rows of one owner between
 * `marker` and `end_marker` (both exclusive), under `prefix`, rolled up at `delimiter`.
 *
 * Live rows are the keys `o\0<owner>\0<name>` in name order, so a page is one ordered range scan
 * (or its reverse). With a delimiter, each common prefix is emitted once and the iterator seeks
 * past the whole range it covers, so a listing never walks the rows under a common prefix.
 */
import type { DbSnapshot, DeviceDb } from './device-db.js';
import { compareUtf8, prefixEnd, rowPrefix } from './keys.js';
import type { AnyRow, RowModel } from './row-model.js';

export interface ListingParams {
  prefix: string;
  delimiter: string;
  marker: string;
  endMarker: string;
  limit: number;
  reverse: boolean;
}

export type ListingEntry<R> = { name: string; row: R } | { subdir: string };

export async function listRows<R extends AnyRow>(
  dev: DeviceDb,
  model: RowModel<R>,
  owner: string,
  p: ListingParams,
  snapshot: DbSnapshot,
): Promise<ListingEntry<R>[]> {
  if (p.limit <= 0) return [];
  const base = rowPrefix('o', owner);
  const baseEnd = prefixEnd(base);
  // Bounds on names; lower is exclusive when it comes from a marker, inclusive from a prefix.
  let low: { name: string; inclusive: boolean } | undefined;
  let high: string | undefined; // exclusive
  const lowMarker = p.reverse ? p.endMarker : p.marker;
  const highMarker = p.reverse ? p.marker : p.endMarker;
  if (lowMarker !== '') low = { name: lowMarker, inclusive: false };
  // A forward marker that is itself a common prefix (the last page ended on a subdir): start
  // after everything under it instead of reading it only to skip it.
  if (
    !p.reverse &&
    p.delimiter !== '' &&
    p.marker.startsWith(p.prefix) &&
    p.marker.length > p.prefix.length &&
    p.marker.indexOf(p.delimiter, p.prefix.length) === p.marker.length - p.delimiter.length
  ) {
    low = { name: p.marker.slice(0, -p.delimiter.length) + String.fromCodePoint((p.delimiter.codePointAt(0) as number) + 1), inclusive: true };
  }
  if (p.prefix !== '' && (low === undefined || compareUtf8(p.prefix, low.name) > 0)) low = { name: p.prefix, inclusive: true };
  if (highMarker !== '') high = highMarker;
  if (p.prefix !== '') {
    const pe = prefixEnd(p.prefix);
    if (high === undefined || compareUtf8(pe, high) < 0) high = pe;
  }
  const range: { gt?: string; gte?: string; lt: string } = { lt: high === undefined ? baseEnd : base + high };
  if (low === undefined) range.gte = base;
  else if (low.inclusive) range.gte = base + low.name;
  else range.gt = base + low.name;
  if (low !== undefined && high !== undefined && compareUtf8(low.name, high) >= 0) return [];

  if (p.delimiter === '') {
    const entries = await dev.db.iterator({ ...range, reverse: p.reverse, limit: p.limit, snapshot }).all();
    return entries.map(([key, value]) => ({ name: key.slice(base.length), row: model.decode(value, false) }));
  }

  const out: ListingEntry<R>[] = [];
  const delimNext = String.fromCodePoint((p.delimiter.codePointAt(0) as number) + 1);
  const it = dev.db.iterator({ ...range, reverse: p.reverse, snapshot });
  let lastSubdir: string | undefined;
  try {
    while (out.length < p.limit) {
      const entry = await it.next();
      if (entry === undefined) break;
      const [key, value] = entry;
      const name = key.slice(base.length);
      const at = name.indexOf(p.delimiter, p.prefix.length);
      if (at < 0) {
        out.push({ name, row: model.decode(value, false) });
        continue;
      }
      const subdir = name.slice(0, at + p.delimiter.length);
      // Reverse seeks land on the common prefix itself when it is also a name: step over it.
      if (p.reverse && subdir === lastSubdir && name === subdir) continue;
      if (subdir !== lastSubdir) {
        lastSubdir = subdir;
        // Swift does not repeat the common prefix the client gave as its marker.
        if (subdir !== p.marker) out.push({ subdir });
      }
      // One seek past every name under this common prefix.
      if (p.reverse) it.seek(base + subdir);
      else it.seek(base + name.slice(0, at) + delimNext);
    }
  } finally {
    await it.close();
  }
  return out;
}
