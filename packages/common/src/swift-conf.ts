/**
 * `swift.conf`: the cluster-wide hash path salt and the storage policies. Every server and tool
 * finds it in `swift_dir` (default /etc/swiftlet), as Swift finds /etc/swift/swift.conf.
 * The salt must be identical on every node and never change, or objects become unreachable.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { ConfigFile } from './config.js';
import { ConfigError } from './errors.js';

export interface StoragePolicy {
  index: number;
  name: string;
  isDefault: boolean;
  deprecated: boolean;
}

export interface HashPathSalt {
  prefix: string;
  suffix: string;
}

export class SwiftConf {
  constructor(
    readonly file: string,
    readonly salt: HashPathSalt,
    readonly policies: readonly StoragePolicy[],
  ) {}

  static load(swiftDir: string): SwiftConf {
    return SwiftConf.loadFile(join(swiftDir, 'swift.conf'));
  }

  static loadFile(file: string): SwiftConf {
    return SwiftConf.fromConfig(ConfigFile.load(file));
  }

  static parse(text: string, file = 'swift.conf'): SwiftConf {
    return SwiftConf.fromConfig(ConfigFile.parse(text, file));
  }

  private static fromConfig(conf: ConfigFile): SwiftConf {
    const hash = conf.section('swift-hash');
    const prefix = hash.string('swift_hash_path_prefix', '');
    const suffix = hash.string('swift_hash_path_suffix', '');
    if (prefix === '' && suffix === '') {
      throw new ConfigError(
        `${conf.file}: [swift-hash] needs swift_hash_path_prefix or swift_hash_path_suffix (or both); ` +
          'set them to secret random strings, the same on every node',
      );
    }
    const policies: StoragePolicy[] = [];
    for (const name of conf.sectionNames()) {
      const m = /^storage-policy:(\d+)$/.exec(name);
      if (!m) continue;
      const sec = conf.section(name);
      const index = Number(m[1]);
      policies.push({
        index,
        name: sec.string('name', index === 0 ? 'Policy-0' : ''),
        isDefault: sec.boolean('default', false),
        deprecated: sec.boolean('deprecated', false),
      });
      if (policies.at(-1)?.name === '') throw new ConfigError(`${conf.file}: [${name}] needs a name`);
    }
    if (policies.length === 0) policies.push({ index: 0, name: 'Policy-0', isDefault: true, deprecated: false });
    policies.sort((a, b) => a.index - b.index);
    const defaults = policies.filter((p) => p.isDefault);
    if (defaults.length > 1) throw new ConfigError(`${conf.file}: more than one storage policy is marked default`);
    if (defaults.length === 0) {
      // Swift: with one policy it is the default; with several, one must be marked.
      if (policies.length > 1) throw new ConfigError(`${conf.file}: one storage policy must be marked default = yes`);
      (policies[0] as StoragePolicy).isDefault = true;
    }
    return new SwiftConf(conf.file, { prefix, suffix }, Object.freeze(policies));
  }

  policy(index: number): StoragePolicy | undefined {
    return this.policies.find((p) => p.index === index);
  }

  get defaultPolicy(): StoragePolicy {
    return this.policies.find((p) => p.isDefault) as StoragePolicy;
  }

  /** The hash of an account, container or object path with this cluster's salt. */
  hashPath(account: string, container?: string, object?: string): PathHash {
    return hashPath(this.salt, account, container, object);
  }
}

export interface PathHash {
  /** 32 lowercase hex digits: the on-disk hash folder name. */
  hex: string;
  /** The raw 16 bytes; the partition is the top part_power bits of the first four. */
  digest: Buffer;
}

/**
 * Swift's hash_path: MD5 of prefix + "/account[/container[/object]]" + suffix, components as UTF-8
 * bytes, names hashed verbatim. An object without a container is an error; empty components count
 * as absent, as in Swift.
 */
export function hashPath(salt: HashPathSalt, account: string, container?: string, object?: string): PathHash {
  if (object && !container) throw new Error('an object needs a container to be hashed');
  let path = `/${account}`;
  if (container) path += `/${container}`;
  if (container && object) path += `/${object}`;
  const digest = createHash('md5').update(salt.prefix).update(path).update(salt.suffix).digest();
  return { hex: digest.toString('hex'), digest };
}

/** Storage policy 0 keeps Swift's plain names; policy N appends `-N` (objects-1, object-1.ring.gz). */
export function policySuffix(policyIndex: number): string {
  return policyIndex === 0 ? '' : `-${policyIndex}`;
}
