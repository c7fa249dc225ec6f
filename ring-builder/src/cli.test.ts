/**
 * swiftlet-ring-builder run as a process (the built dist/cli.js), command by command, with every
 * bad input the spec names; output formats are compared with Swift's own swift-ring-builder.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, RingBuilder } from '@swiftlet/ring';
import { parseDeviceString } from './args.js';

const CLI = fileURLToPath(new URL('../bin/swiftlet-ring-builder.js', import.meta.url));
// Swift's own CLI, many commands in one python3 process (its start-up costs seconds on a busy machine).
const SWIFT_BATCH_PY = `
import contextlib, io, json, sys, traceback
import swift.cli.ringbuilder as rb
out = []
for args in json.load(sys.stdin):
    o, e = io.StringIO(), io.StringIO()
    rb.stderr = e
    with contextlib.redirect_stdout(o), contextlib.redirect_stderr(e):
        try:
            code = rb.main(['swift-ring-builder'] + args) or 0
        except SystemExit as ex:
            code = ex.code if isinstance(ex.code, int) else (0 if ex.code is None else 1)
        except Exception:
            traceback.print_exc()
            code = 2  # what /usr/bin/swift-ring-builder's excepthook exits with
    out.append({'status': code, 'stdout': o.getvalue(), 'stderr': e.getvalue()})
json.dump(out, sys.stdout)
`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

let dir: string;

function srb(...args: string[]): Run {
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd: dir, encoding: 'utf8' });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function swiftBatch(commands: string[][]): Run[] {
  const r = spawnSync('/usr/bin/python3', ['-c', SWIFT_BATCH_PY], { cwd: dir, encoding: 'utf8', input: JSON.stringify(commands) });
  if (r.status !== 0) throw new Error(`Swift's ring builder (python3-swift) failed or is missing: ${r.stderr}`);
  return JSON.parse(r.stdout) as Run[];
}

const md5 = (f: string): string => createHash('md5').update(readFileSync(f)).digest('hex');

/** A fresh builder file with the given devices (device string, weight pairs), made in-process. */
async function builder(name: string, devs: string[] = [], partPower = 6, replicas = 3, mph = 1): Promise<string> {
  const f = join(dir, name);
  const b = RingBuilder.create(partPower, replicas, mph);
  for (let i = 0; i < devs.length; i += 2) {
    const d = parseDeviceString(devs[i] as string);
    b.addDev({ ...d, region: d.region ?? 1, weight: Number(devs[i + 1]) });
  }
  await b.save(f);
  return f;
}

const SIX_DEVS = [
  'r1z1-10.0.0.1:6200/sda', '100', 'r1z1-10.0.0.1:6200/sdb', '100',
  'r1z2-10.0.0.2:6200/sda', '100', 'r1z2-10.0.0.2:6200/sdb', '100',
  'r1z3-10.0.0.3:6200/sda', '100', 'r1z3-10.0.0.3:6200/sdb', '100',
];

/** The command fails with exit 2, one line on stderr matching `msg`, and leaves `file` as it was. */
function expectRefused(file: string, args: string[], msg: RegExp): void {
  const before = existsSync(file) ? readFileSync(file) : undefined;
  const r = srb(...args);
  expect(r.status, `${args.join(' ')}: ${r.stdout}${r.stderr}`).toBe(2);
  const lines = r.stderr.trim().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(msg);
  if (before) expect(readFileSync(file).equals(before)).toBe(true);
  else expect(existsSync(file)).toBe(false);
}

beforeAll(() => {
  if (!existsSync(CLI.replace(/bin\/swiftlet-ring-builder\.js$/, 'dist/cli.js'))) {
    throw new Error('ring-builder is not built: run `make build` first');
  }
  dir = mkdtempSync(join(tmpdir(), 'swiftlet-rb-cli-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('create and add', () => {
  it('creates a builder file and a backup', () => {
    const f = join(dir, 'create.builder');
    const r = srb(f, 'create', '6', '3', '1');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('');
    expect(existsSync(f)).toBe(true);
    const s = JSON.parse(srb(f, '--json').stdout) as Record<string, unknown>;
    expect(s).toMatchObject({ partitions: 64, replicas: 3, min_part_hours: 1, devices: [] });
    expect(readdirSync(join(dir, 'backups')).some((n) => n.endsWith('.create.builder'))).toBe(true);
  });

  it('adds several devices per call in the string form, defaulting region with a warning', async () => {
    const f = await builder('add.builder');
    const r = srb(f, 'add', 'r1z1-127.0.0.1:6200/sdb1', '100', 'z2-127.0.0.2:6201R127.0.1.2:6301/sdc_rack 7', '50.5');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      'Device d0r1z1-127.0.0.1:6200R127.0.0.1:6200/sdb1_"" with 100.0 weight got id 0\n' +
        'Device d1r1z2-127.0.0.2:6201R127.0.1.2:6301/sdc_"rack 7" with 50.5 weight got id 1\n',
    );
    expect(r.stderr).toBe(
      'WARNING: No region specified for z2-127.0.0.2:6201R127.0.1.2:6301/sdc_rack 7. Defaulting to region 1.\n' +
        `Next: swiftlet-ring-builder ${f} rebalance\n`,
    );
  });

  it('adds with the option form, and IPv6 in brackets', async () => {
    const f = await builder('addopt.builder');
    const r = srb(f, 'add', '--region', '2', '--zone=3', '--ip', '127.0.0.9', '--port', '6200',
      '--replication-ip', '127.0.1.9', '--replication-port', '6300', '--device', 'sdd', '--weight', '10', '--meta', 'm');
    expect(r.stdout).toBe('Device d0r2z3-127.0.0.9:6200R127.0.1.9:6300/sdd_"m" with 10.0 weight got id 0\n');
    const v6 = srb(f, 'add', 'r1z1-[::1]:6200/sde', '1');
    expect(v6.stdout).toContain('d1r1z1-[0000:0000:0000:0000:0000:0000:0000:0001]:6200R');
    const s = JSON.parse(srb(f, '--json').stdout) as { devices: { id: number; replication_port: number }[] };
    expect(s.devices.map((d) => d.id).sort()).toEqual([0, 1]);
  });

  it("prints the same add lines and pre-rebalance summary as Swift's swift-ring-builder", async () => {
    const ours = await builder('same.builder');
    const theirs = join(dir, 'same-swift.builder');
    const devs = ['r1z1-127.0.0.1:6200/sdb1', '100', 'r1z2-127.0.0.2:6200R10.0.0.2:6300/sdb2_meta here', '50.25'];
    const [created, b, sb] = swiftBatch([[theirs, 'create', '6', '3', '1'], [theirs, 'add', ...devs], [theirs]]) as [Run, Run, Run];
    expect(created.status).toBe(0);
    const a = srb(ours, 'add', ...devs);
    expect(a.stdout).toBe(b.stdout);
    expect(a.status).toBe(b.status);
    const strip = (s: string): string =>
      s.replace(/^.*build version.*\n/, '').replace(/same(-swift)?\./g, 'X.').replace(/\(\d+:\d\d:\d\d remaining\)/, '(T)');
    const sa = srb(ours);
    expect(strip(sa.stdout)).toBe(strip(sb.stdout));
    expect(sa.stdout).toMatch(/^.*same\.builder, build version \d+, id [0-9a-f]{32}\n/);
  });
});

describe('bad input: one line on stderr, exit 2, builder unchanged', () => {
  let f: string;
  beforeAll(async () => {
    f = await builder('bad.builder', ['r1z1-127.0.0.1:6200/sdb1', '100']);
  });

  it('unknown command', () => expectRefused(f, [f, 'frobnicate'], /^Unknown command: frobnicate$/));
  it('malformed device strings', () => {
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1/sdb2', '100'], /^Invalid device string "r1z1-127.0.0.1\/sdb2": missing :port$/);
    expectRefused(f, [f, 'add', 'r1-127.0.0.1:6200/sdb2', '100'], /expected z<zone>/);
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1:6200', '100'], /expected \/<device>/);
    expectRefused(f, [f, 'add', 'r1z1-999.0.0.1:6200/sdb2', '100'], /invalid address "999\.0\.0\.1"/);
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1:6200/sdb2'], /^usage: swiftlet-ring-builder <builder_file> add/);
  });
  it('duplicate device, also when the first of a batch is fine', () => {
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1:6200/sdb1', '100'], /^Device 0 already uses 127\.0\.0\.1:6200\/sdb1\. The on-disk ring builder is unchanged\.$/);
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1:6200/sdb9', '1', 'r1z1-127.0.0.1:6200/sdb1', '1'], /already uses/);
    expect(JSON.parse(srb(f, '--json').stdout).devices).toHaveLength(1);
  });
  it('non-numeric and negative weights', () => {
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1:6200/sdb2', 'heavy'], /^Invalid weight for r1z1-127\.0\.0\.1:6200\/sdb2 "heavy": not a number$/);
    expectRefused(f, [f, 'add', 'r1z1-127.0.0.1:6200/sdb2', '-5'], /^no such option: -5$/);
    expectRefused(f, [f, 'set_weight', 'd0', 'x'], /^Invalid weight "x": not a number$/);
    expectRefused(f, [f, 'add', '--region', '1', '--zone', '1', '--ip', '127.0.0.1', '--port', '6200', '--device', 'sdz', '--weight', 'w'], /not a number/);
  });
  it('unknown device id', () => {
    expectRefused(f, [f, 'set_weight', 'd99', '10'], /^Search value matched 0 devices\. The on-disk ring builder is unchanged\.$/);
    expectRefused(f, [f, 'remove', 'd99'], /matched 0 devices/);
    expectRefused(f, [f, 'set_info', 'd99', '127.0.0.2:6200/sdx'], /matched 0 devices/);
    expectRefused(f, [f, 'search', 'd99'], /^No matching devices found$/);
  });
  it('part power outside 1..32', () => {
    expectRefused(f, [f, 'create', '0', '3', '1'], /^Invalid part_power 0: must be from 1 to 32$/);
    expectRefused(f, [f, 'create', '33', '3', '1'], /^Invalid part_power 33/);
    expectRefused(f, [f, 'create', 'big', '3', '1'], /^Invalid part_power "big": not an integer$/);
    expectRefused(join(dir, 'never.builder'), [join(dir, 'never.builder'), 'create', '40', '3', '1'], /part_power/);
  });
  it('missing or corrupt builder file', () => {
    const missing = join(dir, 'missing.builder');
    expectRefused(missing, [missing, 'add', 'r1z1-127.0.0.1:6200/sdb1', '100'], new RegExp(`^${missing}: builder file not found`));
    expectRefused(missing, [missing], /builder file not found/);
    const corrupt = join(dir, 'corrupt.builder');
    writeFileSync(corrupt, 'not a builder');
    expectRefused(corrupt, [corrupt, 'rebalance'], new RegExp(`^${corrupt}: corrupt builder file`));
    const truncated = join(dir, 'truncated.builder');
    writeFileSync(truncated, readFileSync(f).subarray(0, 40));
    expectRefused(truncated, [truncated], new RegExp(`^${truncated}: `));
  });
  it('bad overload, replicas, min_part_hours', () => {
    expectRefused(f, [f, 'set_overload', '-1'], /^Overload must be non-negative\.$/);
    expectRefused(f, [f, 'set_overload', 'lots'], /not a number/);
    expectRefused(f, [f, 'set_replicas', '0.5'], /^Replica count must be at least 1\.$/);
    expectRefused(f, [f, 'set_min_part_hours', 'soon'], /not an integer/);
  });
  it('validate, dispersion and list_parts before the first rebalance', () => {
    expectRefused(f, [f, 'validate'], /^Validation failed: /);
    expectRefused(f, [f, 'dispersion'], /is not rebalanced yet/);
    expectRefused(f, [f, 'list_parts', 'd0'], /is not rebalanced yet/);
  });
  it('write_ring of an empty builder', async () => {
    const empty = await builder('empty.builder');
    expectRefused(empty, [empty, 'write_ring'], /^Unable to write empty ring\.$/);
    expect(existsSync(join(dir, 'empty.ring.gz'))).toBe(false);
  });
  it('set_region and set_zone with a bad value or an unknown device', () => {
    expectRefused(f, [f, 'set_zone', 'd0', 'north'], /^Invalid zone "north": not an integer$/);
    expectRefused(f, [f, 'set_region', 'd42', '2'], /matched 0 devices/);
  });
  it('rebalance with fewer devices than replicas', () => {
    expectRefused(f, [f, 'rebalance'], /^Rebalance failed: Replica count of 3 requires more than 1 devices/);
    expect(existsSync(f.replace('.builder', '.ring.gz'))).toBe(false);
  });
  it("exits 2 for the same bad inputs as Swift's tool", () => {
    const bad = [
      ['frobnicate'], ['add', 'r1z1-127.0.0.1/sdb2', '100'], ['add', 'r1z1-127.0.0.1:6200/sdb1', '100'],
      ['add', 'r1z1-127.0.0.1:6200/sdb2', '-5'], ['set_weight', 'd99', '1'], ['validate'], ['set_overload', '-1'],
      ['create', 'big', '3', '1'], ['rebalance'],
    ];
    const theirs = join(dir, 'bad-swift.builder');
    const runs = swiftBatch([[theirs, 'create', '6', '3', '1'], [theirs, 'add', 'r1z1-127.0.0.1:6200/sdb1', '100'], ...bad.map((a) => [theirs, ...a])]);
    bad.forEach((args, i) => {
      expect(runs[i + 2]?.status, `swift ${args.join(' ')}`).toBe(2);
      expect(srb(f, ...args).status, args.join(' ')).toBe(2);
    });
    expect(swiftBatch([[join(dir, 'missing-swift.builder')]])[0]?.status).toBe(2);
  });
});

describe('rebalance and the ring file', () => {
  let f: string;
  let ringFile: string;
  beforeAll(async () => {
    f = await builder('rb.builder', SIX_DEVS);
    ringFile = join(dir, 'rb.ring.gz');
  });

  it('rebalances, writes the ring and backups, then refuses to move again within min_part_hours', () => {
    const r = srb(f, 'rebalance', '--seed', '1');
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Reassigned 192 \(300\.00%\) partitions\. Balance is now 0\.00\.  Dispersion is now 0\.00\n$/);
    expect(existsSync(ringFile)).toBe(true);
    expect(readdirSync(join(dir, 'backups')).some((n) => n.endsWith('.rb.ring.gz'))).toBe(true);
    expect(r.stderr).toBe(`Next: copy ${ringFile} (md5 ${md5(ringFile)}) to every node's swift_dir\n`);
    const again = srb(f, 'rebalance');
    expect(again.status).toBe(1);
    expect(again.stdout).toMatch(/^No partitions could be reassigned\.\nThe time between rebalances must be at least min_part_hours: 1 hours \((1:00:00|0:59:\d\d|0:58:\d\d) remaining\)\n$/);
    const j = srb(f, 'rebalance', '--json');
    expect(j.status).toBe(1);
    expect(JSON.parse(j.stdout)).toMatchObject({ saved: false, reason: 'No partitions could be reassigned.' });
    const ringBefore = md5(ringFile);
    const forced = srb(f, 'rebalance', '--force');
    expect(forced.status).toBe(0);
    expect(forced.stdout).toBe('Reassigned 0 (0.00%) partitions. Balance is now 0.00.  Dispersion is now 0.00\n');
    expect(md5(ringFile)).not.toBe(ringBefore); // saved: the ring's version moved on
    expect(srb(f, 'validate').status).toBe(0);
    expect(JSON.parse(srb(f, 'validate', '--json').stdout)).toEqual({ valid: true });
  });

  it('summary shows the ring file up to date and its md5', () => {
    const s = srb(f);
    expect(s.status).toBe(0);
    expect(s.stdout).toContain(`Ring file ${ringFile} is up-to-date\n`);
    expect(s.stdout).toContain(`Ring file md5 ${md5(ringFile)}\n`);
    expect(s.stdout).toMatch(/^rb\.builder|build version \d+/m);
    const j = JSON.parse(srb(f, '--json').stdout) as Record<string, unknown>;
    expect(j).toMatchObject({ partitions: 64, replicas: 3, regions: 1, zones: 3, ring_status: 'up-to-date', ring_md5: md5(ringFile) });
    // The ring loads and every partition has 3 distinct zones.
    const ring = Ring.load(ringFile);
    for (let p = 0; p < ring.partCount; p++) expect(new Set(ring.getPartNodes(p).map((n) => n.zone)).size).toBe(3);
  });

  it('--dry-run shows moves per device and writes nothing', () => {
    expect(srb(f, 'add', 'r1z4-10.0.0.4:6200/sda', '200').status).toBe(0);
    const builderBytes = readFileSync(f);
    const ringBytes = readFileSync(ringFile);
    srb(f, 'pretend_min_part_hours_passed');
    const afterPretend = readFileSync(f);
    expect(afterPretend.equals(builderBytes)).toBe(false);
    const r = srb(f, 'rebalance', '--dry-run', '--seed', '5');
    expect(r.stdout).toMatch(/^Dry run: would reassign \d+ \(\d+\.\d\d%\) partitions\. Balance would be \d+\.\d\d\.  Dispersion would be \d+\.\d\d\n/);
    expect(r.stdout).toMatch(/ d6 +r1z4-10\.0\.0\.4:6200\/sda +weight +200\.00 +0 -> +\d+ +\(\+\d+\)/);
    expect(r.stdout).toContain('Nothing was written.');
    expect(readFileSync(f).equals(afterPretend)).toBe(true);
    expect(readFileSync(ringFile).equals(ringBytes)).toBe(true);
    const j = JSON.parse(srb(f, 'rebalance', '--dry-run', '--seed', '5', '--json').stdout) as {
      changed_part_replicas: number; devices: { id: number; before: number; after: number }[];
    };
    const d6 = j.devices.find((d) => d.id === 6);
    expect(d6?.before).toBe(0);
    expect(d6?.after).toBeGreaterThan(0);
    expect(j.changed_part_replicas).toBe(j.devices.reduce((n, d) => n + Math.max(0, d.after - d.before), 0));
    // The real rebalance with the same seed gives what the dry run said.
    const real = srb(f, 'rebalance', '--seed', '5');
    expect(real.status).toBeLessThan(2);
    expect(real.stdout).toContain(`Reassigned ${j.changed_part_replicas} (`);
  });

  it('set_weight, set_info, remove, set_overload, set_replicas, set_min_part_hours, write_ring', () => {
    let r = srb(f, 'set_weight', 'd6', '100');
    expect(r).toMatchObject({ status: 0, stdout: 'd6r1z4-10.0.0.4:6200R10.0.0.4:6200/sda_"" weight set to 100.0\n' });
    r = srb(f, 'set_weight', '--zone', '4', '150');
    expect(r.stdout).toContain('weight set to 150.0');
    r = srb(f, 'set_info', 'd6', '10.0.0.44:6209/sdz_new meta');
    expect(r.stdout).toBe('Device d6r1z4-10.0.0.4:6200R10.0.0.4:6200/sda_"" is now d6r1z4-10.0.0.44:6209R10.0.0.4:6200/sdz_"new meta"\n');
    expectRefused(f, [f, 'set_info', 'd6', '10.0.0.1:6200/sda'], /^Device 0 already uses 10\.0\.0\.1:6200\/sda\./);
    r = srb(f, 'set_zone', 'd6', '5');
    expect(r.stdout).toBe('d6r1z5-10.0.0.44:6209R10.0.0.4:6200/sdz_"new meta" zone set to 5\n');
    r = srb(f, 'set_region', '--ip', '10.0.0.44', '2');
    expect(r.stdout).toBe('d6r2z5-10.0.0.44:6209R10.0.0.4:6200/sdz_"new meta" region set to 2\n');
    r = srb(f, 'set_overload', '10%');
    expect(r).toMatchObject({ status: 0, stdout: 'The overload factor is now 10.00% (0.100000)\nThe change will take effect after the next rebalance.\n' });
    r = srb(f, 'set_overload', '2');
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('!?! Warning overload is greater than 100% !?!');
    srb(f, 'set_overload', '0');
    r = srb(f, 'set_replicas', '3.25');
    expect(r.stdout).toBe('The replica count is now 3.250000.\nThe change will take effect after the next rebalance.\n');
    r = srb(f, 'set_min_part_hours', '0');
    expect(r.stdout).toBe('The minimum number of hours before a partition can be reassigned is now set to 0\n');
    r = srb(f, 'remove', 'd6');
    expect(r.stdout).toBe('d6r2z5-10.0.0.44:6209R10.0.0.4:6200/sdz_"new meta" marked for removal and will be removed next rebalance.\n');
    expect(srb(f).stdout).toMatch(/\s+6\s+2\s+5\s+10\.0\.0\.44:6209 .* DEL new meta\n/);
    // the ring file name works as the first argument too
    const viaRing = srb(ringFile, '--json');
    expect(viaRing.stderr).toBe(`Note: using ${f} instead of ${ringFile} as builder file\n`);
    expect(JSON.parse(viaRing.stdout).builder_file).toBe(f);
    r = srb(f, 'rebalance', '--seed', '2');
    expect(r.status).toBeLessThan(2);
    const ring = Ring.load(ringFile);
    expect(ring.replicaCount).toBe(3.25);
    expect(ring.devices[6]).toBeFalsy();
    // write_ring rewrites identical bytes
    const before = md5(ringFile);
    expect(srb(f, 'write_ring').status).toBe(0);
    expect(md5(ringFile)).toBe(before);
    // remove with several matches needs --yes (no terminal here)
    expectRefused(f, [f, 'remove', 'z1'], /add --yes/);
    expect(srb(f, 'remove', 'z1', '--yes').status).toBe(0);
  });
});

describe('read commands', () => {
  let f: string;
  beforeAll(async () => {
    f = await builder('read.builder', SIX_DEVS);
    srb(f, 'rebalance', '--seed', '3');
  });

  it('search and list_parts, text and JSON', () => {
    const s = srb(f, 'search', 'z2');
    expect(s.status).toBe(0);
    expect(s.stdout.split('\n')[0]).toBe('Devices:    id  region  zone      ip address  port  replication ip  replication port      name weight partitions balance meta');
    expect(s.stdout).toMatch(/^\s+2\s+1\s+2\s+10\.0\.0\.2\s+6200\s+10\.0\.0\.2\s+6200\s+sda\s+100\.00\s+32\s+0\.00 $/m);
    const sj = JSON.parse(srb(f, 'search', '--zone', '2', '--json').stdout) as { devices: { id: number }[] };
    expect(sj.devices.map((d) => d.id)).toEqual([2, 3]);
    const lp = srb(f, 'list_parts', 'd0', 'd1');
    expect(lp.stdout.split('\n')[0]).toBe('Partition   Matches');
    const lj = JSON.parse(srb(f, 'list_parts', 'd0', 'd1', '--json').stdout) as { partitions: { partition: number; matches: number }[] };
    // d0 and d1 share zone 1: one replica of every partition, so 64 partitions with 1 match
    expect(lj.partitions).toHaveLength(64);
    expect(lp.stdout.trim().split('\n')).toHaveLength(65);
  });

  it('dispersion: 0 with one replica per zone, exit 1 when a worst tier exists', async () => {
    const d = srb(f, 'dispersion', '-v');
    expect(d.status).toBe(0);
    expect(d.stdout).toMatch(/^Dispersion is 0\.000000, Balance is 0\.000000, Overload is 0\.00%\nRequired overload is 0\.000000%\n-+\nTier +Parts +% +Max +0 +1 +2 +3\n-+\n/);
    expect(d.stdout).toMatch(/^r1z1 +64 +0\.00 +1 +0 +64 +0 +0$/m);
    const zonesOnly = srb(f, 'dispersion', 'r\\d+z\\d+$', '-v');
    expect(zonesOnly.stdout.trim().split('\n').slice(5)).toHaveLength(3);
    const j = JSON.parse(srb(f, 'dispersion', '--json').stdout) as { dispersion: number; tiers: unknown[] };
    expect(j.dispersion).toBe(0);
    // two zones for three replicas: some zone holds two replicas of a partition
    // a light third zone: with overload 0 the weights win and zones 1-2 hold two replicas of some partitions
    const g = await builder('lopsided.builder', [...SIX_DEVS.slice(0, 8), 'r1z3-10.0.0.3:6200/sda', '20']);
    srb(g, 'rebalance', '--seed', '1');
    const w = srb(g, 'dispersion');
    expect(w.status).toBe(1);
    expect(w.stdout).toMatch(/^Worst tier is \d+\.\d{6} \(r1z\d/m);
  });

  it('warns when there are fewer zones or hosts than replicas', async () => {
    const g = await builder('onezone.builder', SIX_DEVS.slice(0, 4));
    const r = srb(g);
    expect(r.stderr).toContain('WARNING: 3 replicas but only 1 zone with weight');
    expect(r.stderr).toContain('WARNING: 3 replicas but only 1 host with weight');
    expect(srb(f).stderr).toBe('');
  });

  it('get-nodes: partition, hash, nodes and curl lines, as the ring library says', () => {
    const conf = join(dir, 'swift.conf');
    writeFileSync(conf, '[swift-hash]\nswift_hash_path_prefix = p\nswift_hash_path_suffix = s\n');
    const ringFile = join(dir, 'read.ring.gz');
    const ring = Ring.load(ringFile, { salt: { prefix: 'p', suffix: 's' } });
    const { part, nodes } = ring.getNodes('AUTH_test', 'c', 'dir/ob ject');
    const handoffs = [...ring.getMoreNodes(part)];
    const t = srb('get-nodes', ringFile, 'AUTH_test', 'c', 'dir/ob ject', '--swift-conf', conf);
    expect(t.status).toBe(0);
    expect(t.stdout).toContain(`Partition\t${part}\n`);
    for (const n of nodes) expect(t.stdout).toContain(`curl -g -I -XHEAD "http://${n.ip}:${n.port}/${n.device}/${part}/AUTH_test/c/dir/ob%20ject"\n`);
    expect(t.stdout).toContain(`Ring file ${ringFile} md5 ${md5(ringFile)}`);
    const j = JSON.parse(srb('get-nodes', ringFile, 'AUTH_test', 'c', 'dir/ob ject', '--swift-conf', conf, '--json').stdout) as {
      partition: number; hash: string; primaries: { id: number }[]; handoffs: { id: number; ip: string }[];
    };
    expect(j.partition).toBe(part);
    expect(j.hash).toMatch(/^[0-9a-f]{32}$/);
    expect(j.primaries.map((n) => n.id)).toEqual(nodes.map((n) => n.id));
    expect(j.handoffs.map((n) => n.id)).toEqual(handoffs.slice(0, 6).map((n) => n.id));
    const all = JSON.parse(srb('get-nodes', ringFile, 'AUTH_test', 'c', 'dir/ob ject', '--swift-conf', conf, '--json', '--all-handoffs').stdout) as { handoffs: unknown[] };
    expect(all.handoffs).toHaveLength(3);
    expect(JSON.parse(srb('get-nodes', ringFile, 'AUTH_test', '--swift-conf', conf, '--json').stdout).partition).toBe(ring.getPart('AUTH_test'));
  });

  it('get-nodes: bad input', () => {
    const ringFile = join(dir, 'read.ring.gz');
    const r = srb('get-nodes', ringFile, 'AUTH_test', '--swift-conf', join(dir, 'nope.conf'));
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^Cannot read the hash path salt from .*nope\.conf/);
    const m = srb('get-nodes', join(dir, 'nope.ring.gz'), 'AUTH_test', '--swift-conf', join(dir, 'swift.conf'));
    expect(m.status).toBe(2);
    expect(m.stderr).toMatch(/nope\.ring\.gz: cannot read ring file/);
    expect(srb('get-nodes', ringFile).status).toBe(2);
  });
});
