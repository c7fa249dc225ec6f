/**
 * What every server's `GET /healthcheck` answers with besides `OK`: the pid of the process that
 * was started (a node:cluster worker gives its primary's). A launcher waiting for a server it
 * just spawned can then tell its own server from another one that holds the same port (two
 * launchers may be handed the same free port; the second server then fails to bind while the
 * first one answers its health checks).
 */
import cluster from 'node:cluster';

export const SERVER_PID_HEADER = 'X-Swiftlet-Server-Pid';

export function serverPid(): string {
  return String(cluster.isWorker ? process.ppid : process.pid);
}
