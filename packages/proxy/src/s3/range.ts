/**
 * The `Range` header as S3 reads it: one byte range (`a-b`, `a-`, suffix `-n`). Anything S3
 * ignores (a malformed header, several ranges, another unit) means "the whole object"; a range
 * that starts beyond the end is unsatisfiable (416 InvalidRange).
 */

export type RangeSpec = { kind: 'bounded'; first: number; last: number } | { kind: 'open'; first: number } | { kind: 'suffix'; length: number };

export type ResolvedRange = { kind: 'whole' } | { kind: 'partial'; start: number; end: number } | { kind: 'unsatisfiable' };

/** Parses a Range header; undefined when S3 would ignore it. */
export function parseRange(header: string | undefined): RangeSpec | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/.exec(header);
  if (!m) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === '' && b === '') return undefined;
  if (a === '') return { kind: 'suffix', length: Number(b) };
  const first = Number(a);
  if (b === '') return { kind: 'open', first };
  const last = Number(b);
  if (last < first) return undefined;
  return { kind: 'bounded', first, last };
}

export function resolveRange(spec: RangeSpec | undefined, size: number): ResolvedRange {
  if (spec === undefined) return { kind: 'whole' };
  switch (spec.kind) {
    case 'suffix':
      if (spec.length === 0 || size === 0) return { kind: 'unsatisfiable' };
      return { kind: 'partial', start: Math.max(0, size - spec.length), end: size - 1 };
    case 'open':
      if (spec.first >= size) return { kind: 'unsatisfiable' };
      return { kind: 'partial', start: spec.first, end: size - 1 };
    case 'bounded':
      if (spec.first >= size) return { kind: 'unsatisfiable' };
      return { kind: 'partial', start: spec.first, end: Math.min(spec.last, size - 1) };
  }
}
