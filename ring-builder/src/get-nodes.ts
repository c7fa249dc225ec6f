/**
 * `get-nodes RING.gz ACCOUNT [CONTAINER [OBJECT]]`: where a name lives (Swift's swift-get-nodes):
 * partition, hash, primaries, handoffs and a `curl -I` line per node.
 */
import { SwiftConf, hashPath } from '@swiftlet/common';
import { Ring, type RingNode } from '@swiftlet/ring';
import { UsageError, parseIntArg, parseOptions } from './args.js';
import { pyQuote } from './format.js';
import type { Io } from './commands.js';

export const GET_NODES_USAGE =
  'usage: swiftlet-ring-builder get-nodes RING.gz ACCOUNT [CONTAINER [OBJECT]] [--swift-conf FILE] [--policy-index N] [--json] [--all-handoffs]';

const nodeJson = (n: RingNode): Record<string, unknown> => ({
  id: n.id, region: n.region, zone: n.zone, ip: n.ip, port: n.port, device: n.device,
});

export async function getNodes(argv: string[], io: Io): Promise<number> {
  const p = parseOptions(argv, [
    { long: 'swift-conf', type: 'string' },
    { long: 'policy-index', type: 'string' },
    { long: 'json', type: 'flag' },
    { long: 'all-handoffs', short: 'a', type: 'flag' },
  ]);
  const [ringFile, account, container, object, ...extra] = p.args;
  if (!ringFile || !account || extra.length > 0) throw new UsageError(GET_NODES_USAGE);
  const confFile = (p.opts.get('swift-conf') as string | undefined) ?? '/etc/swiftlet/swift.conf';
  const policyRaw = p.opts.get('policy-index') as string | undefined;
  const policyIndex = policyRaw === undefined ? undefined : parseIntArg(policyRaw, 'policy index');
  let conf: SwiftConf;
  try {
    conf = SwiftConf.loadFile(confFile);
  } catch (err) {
    throw new UsageError(`Cannot read the hash path salt from ${confFile}: ${(err as Error).message} (use --swift-conf FILE)`);
  }
  if (object && !container) throw new UsageError('an object needs a container');
  const ring = Ring.load(ringFile, { salt: conf.salt, reloadTimeS: 3600 });
  const { hex } = hashPath(conf.salt, account, container, object);
  const { part, nodes } = ring.getNodes(account, container, object);
  const handoffs: RingNode[] = [];
  const limit = p.opts.has('all-handoffs') ? Infinity : 2 * Math.ceil(ring.replicaCount);
  for (const h of ring.getMoreNodes(part)) {
    if (handoffs.length >= limit) break;
    handoffs.push(h);
  }
  if (p.opts.has('json')) {
    io.out(
      JSON.stringify(
        { partition: part, hash: hex, primaries: nodes.map(nodeJson), handoffs: handoffs.map(nodeJson), ring_md5: ring.md5 },
        null,
        2,
      ),
    );
    return 0;
  }
  const target = [account, container, object].filter((x) => x).join('/');
  io.out(`Account  \t${account}`);
  io.out(`Container\t${container ?? 'None'}`);
  io.out(`Object   \t${object ?? 'None'}`);
  io.out('\n');
  io.out(`Partition\t${part}`);
  io.out(`Hash     \t${hex}`);
  io.out('');
  for (const n of nodes) io.out(`Server:Port Device\t${n.ip}:${n.port} ${n.device}`);
  for (const n of handoffs) io.out(`Server:Port Device\t${n.ip}:${n.port} ${n.device}\t [Handoff]`);
  io.out('\n');
  const curl = (n: RingNode): string => {
    const host = n.ip.includes(':') ? `[${n.ip}]` : n.ip;
    let cmd = `curl -g -I -XHEAD "http://${host}:${n.port}/${pyQuote(n.device)}/${part}/${pyQuote(target)}"`;
    if (policyIndex !== undefined) cmd += ` -H "X-Backend-Storage-Policy-Index: ${policyIndex}"`;
    return cmd;
  };
  for (const n of nodes) io.out(curl(n));
  for (const n of handoffs) io.out(`${curl(n)} # [Handoff]`);
  io.out('');
  io.out(`Ring file ${ringFile} md5 ${ring.md5}`);
  return 0;
}
