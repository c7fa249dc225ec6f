import { describe, expect, it } from 'vitest';
import { ConfigFile } from '@swiftlet/common';
import { objectReplicatorConfig } from './config.js';

describe('objectReplicatorConfig', () => {
  it("has Swift's defaults", () => {
    const c = objectReplicatorConfig(ConfigFile.parse('[DEFAULT]\n'));
    expect(c).toMatchObject({
      devices: '/srv/node',
      mountCheck: true,
      bindIp: '0.0.0.0',
      bindPort: 6200,
      intervalS: 30,
      concurrency: 2,
      handoffsFirst: false,
      handoffDelete: 0,
      httpTimeoutMs: 60_000,
      nodeTimeoutMs: 10_000,
      connTimeoutMs: 500,
      syncTimeoutMs: 900_000,
      lockupTimeoutS: 1800,
      statsIntervalS: 300,
      reclaimAgeS: 604800,
      reconCachePath: '/var/cache/swiftlet',
      maxBytesPerSecond: 0,
      ringCheckIntervalS: 15,
      batchReplicate: true,
    });
    expect(objectReplicatorConfig(ConfigFile.parse('[object-replicator]\nbatch_replicate = false\n')).batchReplicate).toBe(false);
  });

  it('reads [DEFAULT] and its own section, bind_* falling back to [object-server]', () => {
    const c = objectReplicatorConfig(
      ConfigFile.parse(
        '[DEFAULT]\ndevices = /d\nmount_check = false\n[object-server]\nbind_ip = 10.0.0.1\nbind_port = 6210\n' +
          '[object-replicator]\nconcurrency = 4\nhandoff_delete = 2\nhandoffs_first = yes\nmax_bytes_per_second = 1000\n',
      ),
    );
    expect(c).toMatchObject({ devices: '/d', mountCheck: false, bindIp: '10.0.0.1', bindPort: 6210, concurrency: 4, handoffDelete: 2, handoffsFirst: true, maxBytesPerSecond: 1000 });
  });

  it('refuses bad values naming the key', () => {
    expect(() => objectReplicatorConfig(ConfigFile.parse('[object-replicator]\nconcurrency = 0\n', 'x.conf'))).toThrow(
      'x.conf [object-replicator] concurrency must be >= 1 (was 0)',
    );
    expect(() => objectReplicatorConfig(ConfigFile.parse('[object-replicator]\nhandoff_delete = some\n', 'x.conf'))).toThrow(
      /handoff_delete must be a number/,
    );
  });
});
