import { ConfigError } from '@swiftlet/common';

/** `fallocate_reserve` as Swift writes it: bytes (`10737418240`) or a percentage (`1%`). */
export function parseFallocateReserve(value: string): { percent?: number; bytes?: number } {
  const v = value.trim();
  const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(v);
  if (m) {
    const percent = Number(m[1]);
    if (percent > 100) throw new ConfigError(`fallocate_reserve ${value}: more than 100 %`);
    return { percent };
  }
  if (/^\d+$/.test(v)) return { bytes: Number(v) };
  throw new ConfigError(`fallocate_reserve "${value}": expected a number of bytes or a percentage like 1%`);
}
