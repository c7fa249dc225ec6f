import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { SwiftConf, hashPath } from './swift-conf.js';

describe('hashPath', () => {
  it('is MD5 of prefix + /a/c/o + suffix, with UTF-8 components', () => {
    const salt = { prefix: 'pre', suffix: 'suf' };
    const want = createHash('md5').update(Buffer.from('pre/AUTH_test/c/ø/x y', 'utf8')).update('suf').digest('hex');
    expect(hashPath(salt, 'AUTH_test', 'c', 'ø/x y').hex).toBe(want);
    expect(hashPath(salt, 'a').hex).toBe(createHash('md5').update('pre/asuf').digest('hex'));
    expect(() => hashPath(salt, 'a', '', 'o')).toThrow(/container/);
  });
});

describe('SwiftConf', () => {
  it('needs a salt', () => {
    expect(() => SwiftConf.parse('[swift-hash]\n')).toThrow(/swift_hash_path_prefix/);
  });
  it('reads policies, with policy 0 implied', () => {
    const c = SwiftConf.parse('[swift-hash]\nswift_hash_path_suffix = x\n');
    expect(c.policies.map((p) => p.index)).toEqual([0]);
    expect(c.defaultPolicy.index).toBe(0);
    const d = SwiftConf.parse(
      '[swift-hash]\nswift_hash_path_prefix = x\n[storage-policy:0]\nname = gold\n[storage-policy:1]\nname = bench\ndefault = yes\n',
    );
    expect(d.policies.map((p) => p.name)).toEqual(['gold', 'bench']);
    expect(d.defaultPolicy.index).toBe(1);
  });
});
