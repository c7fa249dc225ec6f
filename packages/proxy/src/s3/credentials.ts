/**
 * The S3 users: an INI file (`credentials_file`) with one section per user, each naming an access
 * key, its secret key and the Swiftlet account whose buckets the user owns:
 *
 *   [alice]
 *   access_key = AKIAALICE0000000001
 *   secret_key = alicesecret
 *   account = AUTH_alice
 *
 * A section named `user:<access key>` may leave out `access_key` (the form the cluster launcher
 * writes). The file is polled (mtime, size, inode) and re-read when it changes, so users are added and
 * removed without a restart; a file that fails to parse is logged and the previous users stay.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError, ConfigFile, type Logger } from '@swiftlet/common';
import type { Credential } from './sigv4.js';

export function parseCredentials(text: string, file = '<credentials>'): Map<string, Credential> {
  const conf = ConfigFile.parse(text, file);
  const users = new Map<string, Credential>();
  for (const user of conf.sectionNames()) {
    if (user === 'DEFAULT') continue;
    const sec = conf.section(user);
    const fromName = user.startsWith('user:') ? user.slice('user:'.length).trim() : '';
    const accessKey = sec.has('access_key') || fromName === '' ? sec.requiredString('access_key').trim() : fromName;
    const secretKey = sec.requiredString('secret_key').trim();
    const account = sec.requiredString('account').trim();
    if (account.includes('/') || account.startsWith('.')) {
      throw new ConfigError(`${file} [${user}] account must not contain "/" or start with "." (was "${account}")`);
    }
    if (users.has(accessKey)) throw new ConfigError(`${file} [${user}] access_key ${accessKey} is used by another user`);
    users.set(accessKey, { accessKey, secretKey, account, user });
  }
  return users;
}

export class CredentialStore {
  private users: Map<string, Credential>;
  private stamp: string;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    readonly file: string,
    private readonly logger: Logger,
    reloadIntervalS = 2,
  ) {
    this.stamp = this.statStamp();
    this.users = this.read();
    if (reloadIntervalS > 0) {
      this.timer = setInterval(() => this.reloadIfChanged(), reloadIntervalS * 1000);
      this.timer.unref();
    }
  }

  get size(): number {
    return this.users.size;
  }

  lookup(accessKey: string): Credential | undefined {
    return this.users.get(accessKey);
  }

  private statStamp(): string {
    try {
      const st = statSync(this.file);
      return `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch {
      return 'missing';
    }
  }

  private read(): Map<string, Credential> {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (err) {
      throw new ConfigError(`cannot read credentials file ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    return parseCredentials(text, this.file);
  }

  /** Re-reads the file if it changed since the last read; returns true if the users were replaced. */
  reloadIfChanged(): boolean {
    const stamp = this.statStamp();
    if (stamp === this.stamp) return false;
    this.stamp = stamp;
    try {
      this.users = this.read();
      this.logger.info({ file: this.file, users: this.users.size }, 'credentials reloaded');
      return true;
    } catch (err) {
      this.logger.error({ file: this.file, err }, 'credentials file unreadable; keeping the previous users');
      return false;
    }
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
