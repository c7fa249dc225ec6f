/**
 * The proxy data path's settings, with Swift's key names and defaults (proxy-server.conf,
 * `[app:proxy-server]`); see etc/proxy-server.conf-sample.
 */
import { ConfigError, type ConfigSection } from '@swiftlet/common';

export interface ProxyBackendConfig {
  /** Seconds of silence allowed from a backend once connected (node_timeout, 10). */
  nodeTimeoutS: number;
  /** Seconds to establish a backend connection (conn_timeout, 0.5). */
  connTimeoutS: number;
  /** Errors (beyond this count) within the interval that make a node skipped (error_suppression_limit, 10). */
  errorSuppressionLimit: number;
  /** Seconds without a new error after which a node's error record is forgotten (error_suppression_interval, 60). */
  errorSuppressionIntervalS: number;
  /** Order of primaries for reads (sorting_method: shuffle | timing). */
  sortingMethod: 'shuffle' | 'timing';
  /** Seconds to wait for the remaining writers once a quorum answered (post_quorum_timeout, 0.5). */
  postQuorumTimeoutS: number;
  /** Seconds a positive account lookup is cached (recheck_account_existence, 60). */
  recheckAccountExistenceS?: number;
  /** Seconds a positive container lookup (existence, storage policy) is cached (recheck_container_existence, 60). */
  recheckContainerExistenceS?: number;
  /** Seconds a node's measured response time is kept for `timing` (timing_expiry, 300). */
  timingExpiryS?: number;
  /** Nodes tried per request, primaries included; default 2 * replicas (request_node_count). */
  requestNodeCount?: number;
  /** Create the account on first container PUT (account_autocreate, true: what the S3 gateway needs). */
  accountAutocreate?: boolean;
  /**
   * Look the container up before object requests (404 if missing, its storage policy). Swift always
   * does; off only where no container servers run (the backend then uses the policy named by the
   * caller's X-Backend-Storage-Policy-Index, else the default policy).
   */
  checkContainerExistence?: boolean;
  /**
   * Object GET/HEAD consult a read quorum of primaries (N - write quorum + 1) and serve the newest
   * version (consistent_reads, true): read-after-write and read-after-delete as S3 promises.
   * False: Swift's behaviour, the first good answer (one backend request fewer per read).
   */
  consistentReads?: boolean;
}

export const DEFAULT_PROXY_BACKEND_CONFIG: Readonly<Required<ProxyBackendConfig>> = Object.freeze({
  nodeTimeoutS: 10,
  connTimeoutS: 0.5,
  errorSuppressionLimit: 10,
  errorSuppressionIntervalS: 60,
  sortingMethod: 'shuffle',
  postQuorumTimeoutS: 0.5,
  recheckAccountExistenceS: 60,
  recheckContainerExistenceS: 60,
  timingExpiryS: 300,
  requestNodeCount: 0, // 0: 2 * replicas
  accountAutocreate: true,
  checkContainerExistence: true,
  consistentReads: true,
});

/** Reads the data-path keys of a proxy config section (Swift's names). */
export function proxyBackendConfigFromSection(sec: ConfigSection): Required<ProxyBackendConfig> {
  const d = DEFAULT_PROXY_BACKEND_CONFIG;
  const sorting = sec.string('sorting_method', d.sortingMethod).toLowerCase();
  if (sorting !== 'shuffle' && sorting !== 'timing') {
    throw new ConfigError(`sorting_method must be shuffle or timing, not "${sorting}"`);
  }
  return {
    nodeTimeoutS: sec.number('node_timeout', d.nodeTimeoutS, { min: 0.001 }),
    connTimeoutS: sec.number('conn_timeout', d.connTimeoutS, { min: 0.001 }),
    errorSuppressionLimit: sec.integer('error_suppression_limit', d.errorSuppressionLimit, { min: 0 }),
    errorSuppressionIntervalS: sec.number('error_suppression_interval', d.errorSuppressionIntervalS, { min: 0 }),
    sortingMethod: sorting,
    postQuorumTimeoutS: sec.number('post_quorum_timeout', d.postQuorumTimeoutS, { min: 0 }),
    recheckAccountExistenceS: sec.number('recheck_account_existence', d.recheckAccountExistenceS, { min: 0 }),
    recheckContainerExistenceS: sec.number('recheck_container_existence', d.recheckContainerExistenceS, { min: 0 }),
    timingExpiryS: sec.number('timing_expiry', d.timingExpiryS, { min: 0 }),
    requestNodeCount: sec.integer('request_node_count', d.requestNodeCount, { min: 0 }),
    accountAutocreate: sec.boolean('account_autocreate', d.accountAutocreate),
    checkContainerExistence: sec.boolean('check_container_existence', d.checkContainerExistence),
    consistentReads: sec.boolean('consistent_reads', d.consistentReads),
  };
}

export function withDefaults(conf: ProxyBackendConfig): Required<ProxyBackendConfig> {
  const out = { ...DEFAULT_PROXY_BACKEND_CONFIG } as Required<ProxyBackendConfig>;
  for (const [k, v] of Object.entries(conf)) {
    if (v !== undefined) (out as unknown as Record<string, unknown>)[k] = v;
  }
  return out;
}
