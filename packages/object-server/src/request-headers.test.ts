import { describe, expect, it } from 'vitest';
import { ConfigFile } from '@swiftlet/common';
import { objectServerConfig, objectUpdaterConfig, parseFallocateReserve } from './config.js';
import { bodyLength, checkMetadataLimits, deleteAt, headerText, storedMetadata, titleCase, wireText } from './request-headers.js';
import { parseObjectPath } from './request-path.js';

describe('request headers', () => {
  it('title-cases like Python str.title()', () => {
    expect(titleCase('x-object-meta-foo_bar')).toBe('X-Object-Meta-Foo_Bar');
    expect(titleCase('content-TYPE')).toBe('Content-Type');
  });
  it('latin-1 header text <-> UTF-8', () => {
    const wire = Buffer.from('grün ✓', 'utf8').toString('latin1');
    expect(headerText(wire)).toBe('grün ✓');
    expect(wireText('grün ✓')).toBe(wire);
    expect(headerText('ascii')).toBe('ascii');
  });
  it('bodyLength: 411 without length, 400 on garbage, undefined when chunked', () => {
    expect(() => bodyLength({})).toThrow(/Missing Content-Length/);
    expect(() => bodyLength({ 'content-length': '12a' })).toThrow(/Invalid Content-Length/);
    expect(bodyLength({ 'transfer-encoding': 'chunked' })).toBeUndefined();
    expect(bodyLength({ 'content-length': '5' })).toBe(5);
    expect(() => bodyLength({ 'content-length': String(5368709123) })).toThrow(/too large/);
  });
  it('metadata limits at the boundary', () => {
    expect(() => checkMetadataLimits({ [`x-object-meta-${'n'.repeat(128)}`]: 'v' })).not.toThrow();
    expect(() => checkMetadataLimits({ 'x-object-meta-k': 'v'.repeat(256) })).not.toThrow();
    expect(() => checkMetadataLimits({ 'x-object-meta-': 'v' })).toThrow(/cannot be empty/);
  });
  it('deleteAt from X-Delete-After or X-Delete-At', () => {
    expect(deleteAt({ 'x-delete-after': '10' }, 1000.5)).toBe(1010);
    expect(deleteAt({ 'x-delete-at': '2000' }, 1000)).toBe(2000);
    expect(() => deleteAt({ 'x-delete-at': '999' }, 1000)).toThrow(/in past/);
    expect(deleteAt({}, 1000)).toBeUndefined();
  });
  it('storedMetadata keeps user meta, sysmeta, allowed headers only', () => {
    const md = storedMetadata(
      { 'x-object-meta-a': '1', 'x-object-sysmeta-s3-x': '2', 'cache-control': 'no', 'x-other': 'n', 'x-delete-at': '5' },
      new Set(['cache-control', 'x-delete-at']),
    );
    expect(md).toEqual({ 'X-Object-Meta-A': '1', 'X-Object-Sysmeta-S3-X': '2', 'Cache-Control': 'no' });
  });
});

describe('paths', () => {
  it('decodes segments; the object keeps its slashes', () => {
    expect(parseObjectPath('/sda/12/AUTH_a/c/dir/sub/o%20x')).toEqual({ device: 'sda', partition: 12, account: 'AUTH_a', container: 'c', object: 'dir/sub/o x' });
  });
  it('refuses bad shapes', () => {
    expect(() => parseObjectPath('/sda/1/a/c')).toThrow(/Invalid path/);
    expect(() => parseObjectPath('/sda/1.5/a/c/o')).toThrow(/Invalid partition/);
    expect(() => parseObjectPath('/sda/1/a/c/o%00')).toThrow(/NULL/);
    expect(() => parseObjectPath('/sda/1/a/c/%ff')).toThrow(/Invalid UTF8/);
  });
});

describe('config', () => {
  it('defaults as documented', () => {
    const c = objectServerConfig(ConfigFile.parse(''));
    expect(c).toMatchObject({ devices: '/srv/node', mountCheck: true, bindIp: '0.0.0.0', bindPort: 6200, workers: 1, swiftDir: '/etc/swiftlet', reclaimAgeS: 604800, nodeTimeoutMs: 3000, connTimeoutMs: 500, fallocateReserve: { percent: 1 }, readChecksum: 'crc32', reconCachePath: '/var/cache/swiftlet' });
    expect(objectUpdaterConfig(ConfigFile.parse(''))).toMatchObject({ intervalS: 300, concurrency: 8, nodeTimeoutMs: 10000, slowdownS: 0.01 });
  });
  it('[DEFAULT] inherited, section wins; fallocate_reserve forms', () => {
    const c = objectServerConfig(ConfigFile.parse('[DEFAULT]\nbind_port = 7000\nnode_timeout = 5\n[object-server]\nnode_timeout = 2\n'));
    expect(c.bindPort).toBe(7000);
    expect(c.nodeTimeoutMs).toBe(2000);
    expect(parseFallocateReserve('10737418240', 'x')).toEqual({ bytes: 10737418240 });
    expect(parseFallocateReserve('2.5%', 'x')).toEqual({ percent: 2.5 });
    expect(() => parseFallocateReserve('lots', 'f [object-server]')).toThrow(/fallocate_reserve/);
    expect(() => objectServerConfig(ConfigFile.parse('[DEFAULT]\nbind_port = x\n', 'f.conf'))).toThrow(/f.conf \[object-server\] bind_port must be a number/);
  });
  it('read_checksum: crc32 or md5, anything else refused', () => {
    expect(objectServerConfig(ConfigFile.parse('[object-server]\nread_checksum = MD5\n')).readChecksum).toBe('md5');
    expect(() => objectServerConfig(ConfigFile.parse('[object-server]\nread_checksum = sha1\n', 'f.conf'))).toThrow(
      'f.conf [object-server] read_checksum "sha1": expected crc32 or md5',
    );
  });
});
