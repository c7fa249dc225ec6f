/**
 * Warnings Swift does not give: fewer failure domains (with weight) than replicas means some
 * partition must keep two replicas in one zone or on one host, and one failure takes out both.
 */
import type { RingBuilder } from '@swiftlet/ring';

export function failureDomainWarnings(b: RingBuilder): string[] {
  const weighted = b.devs.filter((d) => d !== null && d.weight > 0);
  if (weighted.length === 0) return [];
  const regions = new Set(weighted.map((d) => d?.region)).size;
  const zones = new Set(weighted.map((d) => `${d?.region}/${d?.zone}`)).size;
  const hosts = new Set(weighted.map((d) => `${d?.region}/${d?.zone}/${d?.ip}`)).size;
  const r = b.replicas;
  const shown = Number.isInteger(r) ? String(r) : r.toFixed(2);
  const out: string[] = [];
  // A single-region cluster is the usual case: say nothing about regions then.
  if (regions > 1 && regions < r) {
    out.push(`${shown} replicas but only ${regions} regions with weight: a region outage takes out more than one replica of some partitions`);
  }
  if (zones < r) {
    out.push(`${shown} replicas but only ${zones} zone${zones === 1 ? '' : 's'} with weight: a zone failure takes out more than one replica of some partitions`);
  }
  if (hosts < r) {
    out.push(`${shown} replicas but only ${hosts} host${hosts === 1 ? '' : 's'} with weight: a host failure takes out more than one replica of some partitions`);
  }
  return out;
}
