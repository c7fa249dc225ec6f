/**
 * The `[s3api]` section of proxy-server.conf (see etc/proxy-server.conf for every key and its
 * default).
 */
import { ConfigError, type ConfigSection } from '@swiftlet/common';

export interface S3Config {
  /** The region clients sign for and GetBucketLocation answers (region, us-east-1). */
  region: string;
  /** Domains under which `<bucket>.<domain>` is virtual-hosted addressing (storage_domain, none). */
  storageDomains: string[];
  /** The users' INI file (credentials_file, <swift_dir>/s3-credentials.conf). */
  credentialsFile: string;
  /** Seconds between checks of the credentials file for changes (credentials_reload_interval, 2; 0 = never). */
  credentialsReloadIntervalS: number;
  /** Largest allowed difference between a request's date and ours, in seconds (max_clock_skew, 900). */
  maxClockSkewS: number;
  /** Keys per DeleteObjects request (max_multi_delete_objects, 1000). */
  maxMultiDeleteObjects: number;
  /** Largest single PUT in bytes (max_object_size, 5 GiB). */
  maxObjectSizeBytes: number;
  /** Bodies up to this size are read and verified whole before anything is sent to the object servers (verify_buffer_size, 262144). */
  verifyBufferBytes: number;
  /** The reserved account holding the global bucket registry (bucket_registry_account, .s3_buckets). */
  registryAccount: string;
  /** Concurrent deletes of one DeleteObjects request (multi_delete_concurrency, 8). */
  multiDeleteConcurrency: number;
  /** Seconds without activity after which an unfinished multipart upload is removed (abandoned_upload_expiry, 604800). */
  abandonedUploadExpiryS: number;
}

export const DEFAULT_S3_CONFIG: Readonly<Omit<S3Config, 'credentialsFile'>> = Object.freeze({
  region: 'us-east-1',
  storageDomains: [],
  credentialsReloadIntervalS: 2,
  maxClockSkewS: 900,
  maxMultiDeleteObjects: 1000,
  maxObjectSizeBytes: 5 * 1024 * 1024 * 1024,
  verifyBufferBytes: 256 * 1024,
  registryAccount: '.s3_buckets',
  multiDeleteConcurrency: 8,
  abandonedUploadExpiryS: 7 * 24 * 3600,
});

export function s3ConfigFromSection(sec: ConfigSection, swiftDir: string): S3Config {
  const d = DEFAULT_S3_CONFIG;
  const region = sec.string('region', d.region).trim();
  if (!/^[a-z0-9-]+$/.test(region)) throw new ConfigError(`${sec.file} [${sec.name}] region must be like us-east-1 (was "${region}")`);
  const registryAccount = sec.string('bucket_registry_account', d.registryAccount).trim();
  if (!registryAccount.startsWith('.')) {
    throw new ConfigError(`${sec.file} [${sec.name}] bucket_registry_account must start with "." so no user can own it (was "${registryAccount}")`);
  }
  return {
    region,
    storageDomains: sec.list('storage_domain', []).map((s) => s.toLowerCase().replace(/^\./, '')),
    credentialsFile: sec.string('credentials_file', `${swiftDir}/s3-credentials.conf`),
    credentialsReloadIntervalS: sec.number('credentials_reload_interval', d.credentialsReloadIntervalS, { min: 0 }),
    maxClockSkewS: sec.number('max_clock_skew', d.maxClockSkewS, { min: 1 }),
    maxMultiDeleteObjects: sec.integer('max_multi_delete_objects', d.maxMultiDeleteObjects, { min: 1, max: 10000 }),
    maxObjectSizeBytes: sec.integer('max_object_size', d.maxObjectSizeBytes, { min: 1 }),
    verifyBufferBytes: sec.integer('verify_buffer_size', d.verifyBufferBytes, { min: 0, max: 64 * 1024 * 1024 }),
    registryAccount,
    multiDeleteConcurrency: sec.integer('multi_delete_concurrency', d.multiDeleteConcurrency, { min: 1, max: 64 }),
    abandonedUploadExpiryS: sec.number('abandoned_upload_expiry', d.abandonedUploadExpiryS, { min: 1 }),
  };
}
