import { describe, expect, it } from 'vitest';
import { ConfigError, ConfigFile } from '@swiftlet/common';
import { parseDbServerConfig, unknownConfigKeys } from './config.js';

describe('container/account server config', () => {
  it('has Swift defaults', () => {
    const c = parseDbServerConfig('container', ConfigFile.parse(''));
    expect(c).toMatchObject({ devices: '/srv/node', mountCheck: true, bindPort: 6201, swiftDir: '/etc/swiftlet', workers: 1, reclaimAgeS: 604800, nodeTimeoutS: 3, connTimeoutS: 0.5, logLevel: 'info' });
    expect(c.updater).toMatchObject({ intervalS: 60, concurrency: 4, accountUpdateDelayS: 0.5, accountAutocreate: true });
    expect(c.replicator).toMatchObject({ intervalS: 30, concurrency: 2, perDiff: 1000, maxDiffs: 100 });
    expect(parseDbServerConfig('account', ConfigFile.parse('')).bindPort).toBe(6202);
  });
  it('section values override [DEFAULT]; workers > 1 and bad values are refused with the key named', () => {
    const c = parseDbServerConfig('account', ConfigFile.parse('[DEFAULT]\nbind_port = 1\n[account-server]\nbind_port = 2\nlog_level = WARNING\n[account-replicator]\ninterval = 0\n'));
    expect([c.bindPort, c.logLevel, c.replicator.intervalS]).toEqual([2, 'warn', 0]);
    expect(() => parseDbServerConfig('container', ConfigFile.parse('[container-server]\nworkers = 2\n', 'x.conf'))).toThrow(ConfigError);
    expect(() => parseDbServerConfig('container', ConfigFile.parse('[DEFAULT]\nnode_timeout = soon\n', 'x.conf'))).toThrow(/node_timeout/);
  });
  it('names unknown keys', () => {
    expect(unknownConfigKeys('container', ConfigFile.parse('[DEFAULT]\ndevices = /d\nrecon_cache_path = /r\n[container-server]\nbind_prot = 1\n'))).toEqual(['[container-server] bind_prot']);
  });
});
