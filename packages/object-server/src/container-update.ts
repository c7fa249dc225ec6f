/**
 * Container updates: after a PUT or DELETE is durable, tell every container replica named by the
 * proxy (X-Container-Host/-Device/-Partition) about the new row, in parallel and bounded by
 * conn_timeout/node_timeout. Every replica that fails is recorded in one async pending, so the
 * object updater can deliver it later; the client still gets its 201/204.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { backendPath, backendRequest } from '@swiftlet/common';
import { type AsyncPending, type ContainerNode, writeAsyncPending } from './async-pending.js';
import { header } from './request-headers.js';

export interface UpdateTimeouts {
  connTimeoutMs: number;
  nodeTimeoutMs: number;
}

/** The container replicas named by the request; [] when it names none (or inconsistently). */
export function containerNodesFromHeaders(headers: IncomingHttpHeaders, logger: Logger): ContainerNode[] {
  const hosts = header(headers, 'x-container-host');
  const devices = header(headers, 'x-container-device');
  const partitions = header(headers, 'x-container-partition');
  if (hosts === undefined || devices === undefined || partitions === undefined) return [];
  const hostList = hosts.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const devList = devices.split(',').map((s) => s.trim()).filter((s) => s !== '');
  const partList = partitions.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (hostList.length !== devList.length || (partList.length !== 1 && partList.length !== hostList.length)) {
    logger.error({ hosts, devices, partitions }, 'container update headers do not match in length; no update sent');
    return [];
  }
  const nodes: ContainerNode[] = [];
  for (let i = 0; i < hostList.length; i++) {
    const hostPort = hostList[i] as string;
    const colon = hostPort.lastIndexOf(':');
    const ip = hostPort.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(hostPort.slice(colon + 1));
    const partition = Number(partList.length === 1 ? partList[0] : partList[i]);
    if (colon <= 0 || !Number.isInteger(port) || !Number.isInteger(partition)) {
      logger.error({ hosts, devices, partitions }, 'malformed container update headers; no update sent');
      return [];
    }
    nodes.push({ ip, port, device: devList[i] as string, partition });
  }
  return nodes;
}

/**
 * A container server running in this process (swiftlet-storage-server). An update addressed to it
 * is applied by a call instead of an HTTP request to ourselves: under 64 concurrent 4 KiB S3 PUTs,
 * the container updates were ~45 % of the cluster's CPU per PUT, and most of an update's cost
 * is the HTTP exchange on both sides (bench/RESULTS.md). Beyond Swift, whose servers are separate
 * daemons.
 */
export interface LocalContainerServer {
  /** True when `node` (ip, port) is this process's container server. */
  serves(node: ContainerNode): boolean;
  /** The update as that server's HTTP route would make it; the status it would answer. */
  apply(method: string, path: string, headers: IncomingHttpHeaders): Promise<number>;
}

/** A local update bounded as an HTTP one is (conn_timeout + node_timeout). */
function applyLocally(local: LocalContainerServer, method: string, path: string, headers: Record<string, string>, timeouts: UpdateTimeouts): Promise<number> {
  const lower: IncomingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) lower[k.toLowerCase()] = v;
  let timer: NodeJS.Timeout | undefined;
  const limit = timeouts.connTimeoutMs + timeouts.nodeTimeoutMs;
  return Promise.race([
    local.apply(method, path, lower),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${limit} ms (in-process)`)), limit);
    }),
  ]).finally(() => clearTimeout(timer));
}

/** One update to one container replica; true when it answered 2xx. */
export async function sendOneUpdate(
  node: ContainerNode,
  update: Pick<AsyncPending, 'op' | 'account' | 'container' | 'obj' | 'headers'>,
  timeouts: UpdateTimeouts,
  logger: Logger,
  local?: LocalContainerServer,
): Promise<boolean> {
  const path = backendPath(node.device, node.partition, update.account, update.container, update.obj);
  try {
    const headers = { ...update.headers, 'User-Agent': `object-server ${process.pid}` };
    let status: number;
    if (local?.serves(node)) status = await applyLocally(local, update.op, path, headers, timeouts);
    else {
      const res = await backendRequest(node, {
        method: update.op,
        path,
        headers,
        connTimeoutMs: timeouts.connTimeoutMs,
        nodeTimeoutMs: timeouts.nodeTimeoutMs,
      });
      res.resume();
      status = res.statusCode ?? 0;
    }
    if (status >= 200 && status < 300) return true;
    logger.warn({ node: `${node.ip}:${node.port}/${node.device}`, status, path, txId: update.headers['X-Trans-Id'] },
      'container update refused');
    return false;
  } catch (err) {
    logger.warn({ node: `${node.ip}:${node.port}/${node.device}`, path, err: (err as Error).message, txId: update.headers['X-Trans-Id'] },
      'container update failed');
    return false;
  }
}

/**
 * Sends the update to every node; the returned promise settles once every node answered and any
 * failure was written as an async pending (the caller may stop waiting earlier).
 */
export async function updateContainers(
  nodes: ContainerNode[],
  update: Omit<AsyncPending, 'nodes' | 'version'>,
  pendingFile: string,
  timeouts: UpdateTimeouts,
  logger: Logger,
  local?: LocalContainerServer,
): Promise<{ failed: number }> {
  const results = await Promise.all(nodes.map((n) => sendOneUpdate(n, update, timeouts, logger, local)));
  const failedNodes = nodes.filter((_, i) => !results[i]);
  if (failedNodes.length > 0) {
    try {
      await writeAsyncPending(pendingFile, { version: 1, ...update, nodes: failedNodes });
      logger.info({ file: pendingFile, failed: failedNodes.length, txId: update.headers['X-Trans-Id'] }, 'container update saved as async pending');
    } catch (err) {
      logger.error({ err, file: pendingFile }, 'could not write async pending; container listing will miss this update');
    }
  }
  return { failed: failedNodes.length };
}
