/**
 * A Debian-packaged S3 client against the gateway: /usr/bin/aws (awscli, botocore) with
 * --endpoint-url, credentials from the environment and a throw-away HOME, on a whole cluster.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, startS3Cluster, storedReplicas, type S3Cluster } from './helpers.js';

const run = promisify(execFile);
const AWS = '/usr/bin/aws';

describe('aws cli (Debian awscli) against the S3 gateway', () => {
  let s3: S3Cluster;
  let home: string;

  const aws = async (args: string[], user = ALICE): Promise<{ code: number; stdout: string; stderr: string }> => {
    try {
      const { stdout, stderr } = await run(AWS, ['--endpoint-url', s3.endpoint, ...args], {
        env: {
          PATH: process.env['PATH'] ?? '/usr/bin:/bin',
          HOME: home,
          AWS_ACCESS_KEY_ID: user.accessKey,
          AWS_SECRET_ACCESS_KEY: user.secretKey,
          AWS_DEFAULT_REGION: 'us-east-1',
          AWS_CONFIG_FILE: join(home, 'none-config'),
          AWS_SHARED_CREDENTIALS_FILE: join(home, 'none-credentials'),
          AWS_EC2_METADATA_DISABLED: 'true',
          AWS_PAGER: '',
        },
        timeout: 60_000,
      });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number; stdout?: string; stderr?: string };
      return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };

  beforeAll(async () => {
    home = await mkdtemp(join(tmpdir(), 'swiftlet-awscli-'));
    s3 = await startS3Cluster();
  }, 180_000);
  afterAll(async () => {
    await s3?.stop();
    if (home) await rm(home, { recursive: true, force: true });
  }, 60_000);

  // One scenario: every aws invocation starts a Python interpreter, which is slow on a busy machine.
  it('mb, cp up (multipart) and down, s3api put-object/head-object with metadata, ls, presign, AccessDenied, rm, rb', { timeout: 300_000 }, async () => {
    expect((await aws(['s3', 'mb', 's3://cli-bucket'])).stdout).toContain('make_bucket: cli-bucket');
    // Above the cli's 8 MiB multipart threshold: cp uploads it in parts.
    const data = randomBytes(9 * 1024 * 1024 + 17);
    const src = join(home, 'upload.bin');
    await writeFile(src, data);
    const up = await aws(['s3', 'cp', src, 's3://cli-bucket/dir/upload.bin']);
    expect(up.code, up.stderr).toBe(0);
    expect(await storedReplicas(s3.cluster, ALICE.account, 'cli-bucket', 'dir/upload.bin')).toHaveLength(3);
    const dst = join(home, 'download.bin');
    const down = await aws(['s3', 'cp', 's3://cli-bucket/dir/upload.bin', dst]);
    expect(down.code, down.stderr).toBe(0);
    expect(createHash('md5').update(await readFile(dst)).digest('hex')).toBe(createHash('md5').update(data).digest('hex'));

    const small = join(home, 'small.txt');
    await writeFile(small, 'presigned by awscli');
    const put = await aws(['s3api', 'put-object', '--bucket', 'cli-bucket', '--key', 'meta.txt', '--body', small, '--content-type', 'text/x-cli', '--metadata', 'origin=awscli']);
    expect(put.code, put.stderr).toBe(0);
    const head = JSON.parse((await aws(['s3api', 'head-object', '--bucket', 'cli-bucket', '--key', 'meta.txt'])).stdout) as Record<string, unknown>;
    expect([head['ContentType'], head['Metadata'], head['ContentLength']]).toEqual(['text/x-cli', { origin: 'awscli' }, 19]);

    const ls = await aws(['s3', 'ls', 's3://cli-bucket', '--recursive']);
    expect(ls.stdout).toMatch(/dir\/upload\.bin/);
    expect(ls.stdout).toMatch(/meta\.txt/);

    const url = (await aws(['s3', 'presign', 's3://cli-bucket/meta.txt', '--expires-in', '120'])).stdout.trim();
    const res = await fetch(url);
    expect([res.status, await res.text()]).toEqual([200, 'presigned by awscli']);

    // Another account's user is refused, with S3's error code in the cli's message.
    const denied = await aws(['s3', 'ls', 's3://cli-bucket'], BOB);
    expect(denied.code).not.toBe(0);
    expect(denied.stderr).toContain('AccessDenied');

    expect((await aws(['s3', 'rm', 's3://cli-bucket', '--recursive'])).code).toBe(0);
    const rb = await aws(['s3', 'rb', 's3://cli-bucket']);
    expect(rb.stdout).toContain('remove_bucket: cli-bucket');
    expect((await aws(['s3', 'ls'])).stdout.trim()).toBe('');
  });
});
