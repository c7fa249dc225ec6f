import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ConfigFile } from '@swiftlet/common';
import { describe, expect, it } from 'vitest';
import { proxyServerConfig } from './config.js';

const sample = fileURLToPath(new URL('../../../etc/proxy-server.conf', import.meta.url));

describe('proxy-server.conf', () => {
  it('the sample file (every key commented out) gives the documented defaults', () => {
    const c = proxyServerConfig(ConfigFile.parse(readFileSync(sample, 'utf8'), sample));
    expect([c.bindIp, c.bindPort, c.swiftDir, c.workers, c.logLevel]).toEqual(['0.0.0.0', 8080, '/etc/swiftlet', 1, 'info']);
    expect(c.s3).toMatchObject({ region: 'us-east-1', storageDomains: [], credentialsFile: '/etc/swiftlet/s3-credentials.conf', maxClockSkewS: 900, maxMultiDeleteObjects: 1000, registryAccount: '.s3_buckets' });
    expect(c.backend).toMatchObject({ nodeTimeoutS: 10, connTimeoutS: 0.5, errorSuppressionLimit: 10, errorSuppressionIntervalS: 60, sortingMethod: 'shuffle' });
  });

  it('every key documented in the sample is read by the parser (no dead keys)', () => {
    const text = readFileSync(sample, 'utf8');
    const documented = [...text.matchAll(/^# ([a-z_]+) =/gm)].map((m) => m[1] as string);
    expect(documented.length).toBeGreaterThan(20);
    // Setting each key to a wrong type must be noticed: proof that it is read.
    for (const key of documented) {
      if (['bind_ip', 'swift_dir', 'credentials_file', 'storage_domain', 'region'].includes(key)) continue;
      const section = key.startsWith('bind') || ['swift_dir', 'workers', 'log_level'].includes(key) ? 'DEFAULT' : text.indexOf(`# ${key} =`) > text.indexOf('[s3api]') ? 's3api' : 'proxy-server';
      expect(() => proxyServerConfig(ConfigFile.parse(`[${section}]\n${key} = not-valid-###\n`)), key).toThrow();
    }
  });

  it('values are read from their sections, [DEFAULT] inherited', () => {
    const c = proxyServerConfig(
      ConfigFile.parse('[DEFAULT]\nbind_port = 9000\nswift_dir = /srv/etc\n[proxy-server]\nnode_timeout = 3\n[s3api]\nregion = eu-west-1\nstorage_domain = s3.example.com, .s3.local\nmax_clock_skew = 60\n'),
    );
    expect([c.bindPort, c.backend.nodeTimeoutS, c.s3.region, c.s3.storageDomains, c.s3.maxClockSkewS, c.s3.credentialsFile]).toEqual([
      9000, 3, 'eu-west-1', ['s3.example.com', 's3.local'], 60, '/srv/etc/s3-credentials.conf',
    ]);
    expect(() => proxyServerConfig(ConfigFile.parse('[s3api]\nbucket_registry_account = buckets\n'))).toThrow(/start with/);
  });
});

describe('unknown keys', () => {
  it('are reported with their section; the sample file has none', async () => {
    const { unknownProxyKeys } = await import('./config.js');
    const text = readFileSync(sample, 'utf8').replace(/^# ([a-z_]+ =.*)$/gm, '$1').replace(/<swift_dir>/, '/etc/swiftlet');
    expect(unknownProxyKeys(ConfigFile.parse(text))).toEqual([]);
    expect(unknownProxyKeys(ConfigFile.parse('[DEFAULT]\nbind_prot = 1\n[s3api]\nregoin = x\n[filter:x]\na = 1\n'))).toEqual(['[DEFAULT] bind_prot', '[s3api] regoin', '[filter:x]']);
  });
});
