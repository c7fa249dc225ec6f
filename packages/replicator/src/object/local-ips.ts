/** Which ring devices live on this node (the addresses: @swiftlet/common's localAddresses). */
export { localAddresses } from '@swiftlet/common';

export function isLocalDevice(
  addresses: ReadonlySet<string>,
  bindPort: number,
  dev: { replicationIp: string; replicationPort: number },
): boolean {
  return addresses.has(dev.replicationIp) && dev.replicationPort === bindPort;
}
