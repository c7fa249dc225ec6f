/**
 * This node's addresses, Swift's `whataremyips(bind_ip)`: a specific bind_ip is the node's only
 * address; 0.0.0.0 (or ::) means every address of every interface.
 */
import { networkInterfaces } from 'node:os';

export function localAddresses(bindIp: string): Set<string> {
  if (bindIp !== '0.0.0.0' && bindIp !== '::' && bindIp !== '') return new Set([bindIp]);
  const out = new Set<string>(['127.0.0.1', '::1']);
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.add(a.address);
  }
  return out;
}
