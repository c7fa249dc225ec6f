/**
 * The builder commands, with swift-ring-builder's syntax, messages and exit codes (0 done,
 * 1 done with a warning or nothing to do, 2 error). Every change is made in memory first and
 * saved once at the end, so an error leaves the builder file as it was.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline/promises';
import {
  MAX_BALANCE,
  RingBuilder,
  RingData,
  type BuilderDevice,
  type NewDevice,
  type RebalanceResult,
} from '@swiftlet/ring';
import {
  DEVICE_OPTS,
  UsageError,
  deviceFromOptions,
  parseChangeValue,
  parseDeviceString,
  parseFloatArg,
  parseIntArg,
  parseOptions,
  searchFromOptions,
  usesOptionForm,
  type OptSpec,
  type Parsed,
} from './args.js';
import { deviceTable, fixed, formatDevice, padL, pyFloat, timedelta } from './format.js';
import { failureDomainWarnings } from './warnings.js';

export const EXIT_SUCCESS = 0;
export const EXIT_WARNING = 1;
export const EXIT_ERROR = 2;

export interface Io {
  out(line?: string): void;
  err(line: string): void;
}

export interface Ctx {
  io: Io;
  builderFile: string;
  ringFile: string;
  /** Arguments after the command name. */
  argv: string[];
}

type Handler = (ctx: Ctx, b: RingBuilder) => Promise<number>;

export const COMMAND_USAGE: Record<string, string> = {
  create: 'create <part_power> <replicas> <min_part_hours>',
  add: 'add [r<region>]z<zone>-<ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta> <weight> [...] | add --region R --zone Z --ip IP --port P [--replication-ip IP] [--replication-port P] --device D --weight W [--meta M]',
  remove: 'remove <search-value> [<search-value> ...] [--yes]',
  set_weight: 'set_weight <search-value> <weight> [<search-value> <weight>] ... [--yes]',
  set_region: 'set_region <search-value> <region> [...] [--yes]',
  set_zone: 'set_zone <search-value> <zone> [...] [--yes]',
  set_info: 'set_info <search-value> <ip>:<port>[R<r_ip>:<r_port>]/<device_name>_<meta> [...] [--yes]',
  set_overload: 'set_overload <overload>[%]',
  set_replicas: 'set_replicas <replicas>',
  set_min_part_hours: 'set_min_part_hours <hours>',
  rebalance: 'rebalance [--force] [--seed N] [--dry-run] [--json]',
  write_ring: 'write_ring',
  pretend_min_part_hours_passed: 'pretend_min_part_hours_passed',
  dispersion: 'dispersion [<tier-regex>] [-v] [--recalculate] [--json]',
  validate: 'validate [--json]',
  search: 'search <search-value> [--json]',
  list_parts: 'list_parts <search-value> [<search-value> ...] [--json]',
};

const JSON_OPT: OptSpec = { long: 'json', type: 'flag' };

function usage(cmd: string): UsageError {
  return new UsageError(`usage: swiftlet-ring-builder <builder_file> ${COMMAND_USAGE[cmd] ?? cmd}`);
}

const json = (io: Io, v: unknown): void => io.out(JSON.stringify(v, null, 2));

function devJson(d: BuilderDevice, balance?: number, flags?: string): Record<string, unknown> {
  const o: Record<string, unknown> = {
    id: d.id, region: d.region, zone: d.zone, ip: d.ip, port: d.port,
    replication_ip: d.replicationIp, replication_port: d.replicationPort,
    device: d.device, weight: d.weight, meta: d.meta, parts: d.parts,
  };
  if (balance !== undefined) o['balance'] = balance;
  if (flags !== undefined) o['flags'] = flags;
  return o;
}

/** The style guide's "next command" line; on stderr, so stdout stays what Swift prints. */
function next(ctx: Ctx, what: string): void {
  ctx.io.err(`Next: ${what}`);
}
const rebalanceNext = (ctx: Ctx): string => `swiftlet-ring-builder ${ctx.builderFile} rebalance`;
const pushNext = (ctx: Ctx, md5: string): string => `copy ${ctx.ringFile} (md5 ${md5}) to every node's swift_dir`;
const fileMd5 = (file: string): string => createHash('md5').update(readFileSync(file)).digest('hex');

const liveDevs = (b: RingBuilder): BuilderDevice[] => b.devs.filter((d): d is BuilderDevice => d !== null);

async function save(ctx: Ctx, b: RingBuilder): Promise<void> {
  await b.save(ctx.builderFile);
}

function backupName(ctx: Ctx, file: string): string {
  return join(dirname(ctx.builderFile), 'backups', `${Math.trunc(Date.now() / 1000)}.${basename(file)}`);
}

/** Several matches need --yes (or a "y" on a terminal), as in Swift. */
async function checkDevs(ctx: Ctx, devs: BuilderDevice[], yes: boolean, question: string): Promise<void> {
  if (devs.length === 0) throw new UsageError('Search value matched 0 devices. The on-disk ring builder is unchanged.');
  if (devs.length === 1 || yes) return;
  ctx.io.out('Matched more than one device:');
  for (const d of devs) ctx.io.out(`    ${formatDevice(d)}`);
  if (!process.stdin.isTTY) {
    throw new UsageError(`Search value matched ${devs.length} devices; add --yes to change them all. The on-disk ring builder is unchanged.`);
  }
  const rl = createInterface({ input: process.stdin, output: process.stdout });
  const answer = await rl.question(question.replace('%s', String(devs.length)));
  rl.close();
  if (answer.trim() !== 'y') throw new UsageError('Aborting device modifications. The on-disk ring builder is unchanged.');
}

function pairs(args: string[], cmd: string): [string, string][] {
  if (args.length === 0 || args.length % 2 !== 0) throw usage(cmd);
  const out: [string, string][] = [];
  for (let i = 0; i < args.length; i += 2) out.push([args[i] as string, args[i + 1] as string]);
  return out;
}

function search(b: RingBuilder, value: string): BuilderDevice[] {
  return b.searchDevs(value);
}

// ------------------------------------------------------------------------------------------------

async function create(ctx: Ctx): Promise<number> {
  const args = ctx.argv;
  if (args.length < 3) throw usage('create');
  const partPower = parseIntArg(args[0] as string, 'part_power');
  if (partPower < 1 || partPower > 32) throw new UsageError(`Invalid part_power ${partPower}: must be from 1 to 32`);
  const replicas = parseFloatArg(args[1] as string, 'replicas');
  const minPartHours = parseIntArg(args[2] as string, 'min_part_hours');
  const b = RingBuilder.create(partPower, replicas, minPartHours);
  await save(ctx, b);
  next(ctx, `swiftlet-ring-builder ${ctx.builderFile} add r<region>z<zone>-<ip>:<port>/<device> <weight> [...]`);
  return EXIT_SUCCESS;
}

async function summary(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, [JSON_OPT]);
  const devs = liveDevs(b);
  const regions = new Set(devs.map((d) => d.region)).size;
  const zones = new Set(devs.map((d) => `${d.region}/${d.zone}`)).size;
  const balance = b.getBalance();
  const perDev = b.balancePerDev();
  const removing = new Set(b.pendingRemovals);
  const flag = (id: number): string => (removing.has(id) ? 'DEL' : '');
  let ringStatus: 'not found' | 'invalid' | 'up-to-date' | 'obsolete';
  let ringMd5: string | undefined;
  let ringError = '';
  if (!existsSync(ctx.ringFile)) ringStatus = 'not found';
  else {
    const bytes = readFileSync(ctx.ringFile);
    ringMd5 = createHash('md5').update(bytes).digest('hex');
    try {
      const onDisk = RingData.fromBuffer(bytes, ctx.ringFile);
      const same = onDisk.toBuffer('x').equals(b.getRingData().toBuffer('x'));
      ringStatus = same ? 'up-to-date' : 'obsolete';
    } catch (err) {
      ringStatus = 'invalid';
      ringError = (err as Error).message;
    }
  }
  const secondsLeft = b.minPartSecondsLeft();
  const sorted = [...devs].sort(
    (x, y) => x.region - y.region || x.zone - y.zone || (x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : 0) || (x.device < y.device ? -1 : x.device > y.device ? 1 : 0),
  );
  const warnings = failureDomainWarnings(b);
  if (p.opts.get('json')) {
    json(ctx.io, {
      builder_file: ctx.builderFile, ring_file: ctx.ringFile, version: b.version, id: b.id,
      partitions: b.parts, replicas: b.replicas, regions, zones, devices_count: devs.length,
      balance, dispersion: b.dispersion, min_part_hours: b.minPartHours, min_part_seconds_left: secondsLeft,
      overload: b.overload, ring_status: ringStatus, ring_md5: ringMd5 ?? null,
      devices: sorted.map((d) => devJson(d, perDev.get(d.id) ?? 0, flag(d.id))), warnings,
    });
    return EXIT_SUCCESS;
  }
  const io = ctx.io;
  io.out(`${ctx.builderFile}, build version ${b.version}, id ${b.id ?? '(not assigned)'}`);
  io.out(
    `${b.parts} partitions, ${fixed(b.replicas, 6)} replicas, ${regions} regions, ${zones} zones, ` +
      `${devs.length} devices, ${fixed(balance, 2)} balance, ${fixed(b.dispersion, 2)} dispersion`,
  );
  io.out(`The minimum number of hours before a partition can be reassigned is ${b.minPartHours} (${timedelta(secondsLeft)} remaining)`);
  io.out(`The overload factor is ${fixed(b.overload * 100, 2)}% (${fixed(b.overload, 6)})`);
  if (ringStatus === 'not found') io.out(`Ring file ${ctx.ringFile} not found, probably it hasn't been written yet`);
  else if (ringStatus === 'invalid') io.out(`Ring file ${ctx.ringFile} is invalid: ${ringError}`);
  else io.out(`Ring file ${ctx.ringFile} is ${ringStatus}`);
  if (ringMd5) io.out(`Ring file md5 ${ringMd5}`);
  for (const line of deviceTable(sorted, (id) => perDev.get(id) ?? 0, flag)) io.out(line);
  for (const w of warnings) io.err(`WARNING: ${w}`);
  return EXIT_SUCCESS;
}

async function add(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, DEVICE_OPTS);
  const news: NewDevice[] = [];
  if (p.args.length > 0) {
    if (usesOptionForm(p)) throw usage('add');
    for (const [devstr, weightstr] of pairs(p.args, 'add')) {
      const d = parseDeviceString(devstr);
      if (d.region === undefined) ctx.io.err(`WARNING: No region specified for ${devstr}. Defaulting to region 1.`);
      const weight = parseFloatArg(weightstr, `weight for ${devstr}`);
      if (weight < 0) throw new UsageError(`Invalid weight value: ${devstr} ${weightstr}`);
      news.push({
        region: d.region ?? 1, zone: d.zone, ip: d.ip, port: d.port,
        replicationIp: d.replicationIp ?? d.ip, replicationPort: d.replicationPort ?? d.port,
        device: d.device, weight, meta: d.meta,
      });
    }
  } else if (usesOptionForm(p)) {
    news.push(deviceFromOptions(p));
  } else {
    throw usage('add');
  }
  for (const nd of news) {
    const clash = liveDevs(b).find((d) => d.ip === nd.ip && d.port === nd.port && d.device === nd.device);
    if (clash) {
      throw new UsageError(`Device ${clash.id} already uses ${clash.ip}:${clash.port}/${clash.device}. The on-disk ring builder is unchanged.`);
    }
    const id = b.addDev(nd);
    const shown = b.devs[id] as BuilderDevice;
    ctx.io.out(`Device ${formatDevice(shown)} with ${pyFloat(shown.weight)} weight got id ${id}`);
  }
  await save(ctx, b);
  next(ctx, rebalanceNext(ctx));
  return EXIT_SUCCESS;
}

async function remove(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, DEVICE_OPTS);
  let devs: BuilderDevice[] = [];
  if (p.args.length > 0) {
    if (usesOptionForm(p)) throw usage('remove');
    for (const a of p.args) devs.push(...search(b, a));
  } else if (usesOptionForm(p)) {
    devs = b.searchDevs(searchFromOptions(p));
  } else throw usage('remove');
  devs = [...new Map(devs.map((d) => [d.id, d])).values()];
  await checkDevs(ctx, devs, p.opts.has('yes'), 'Are you sure you want to remove these %s devices? (y/N) ');
  for (const d of devs) {
    const shown = formatDevice(d);
    b.removeDev(d.id);
    ctx.io.out(`${shown} marked for removal and will be removed next rebalance.`);
  }
  await save(ctx, b);
  next(ctx, rebalanceNext(ctx));
  return EXIT_SUCCESS;
}

function setter(
  cmd: 'set_weight' | 'set_region' | 'set_zone',
  what: string,
  parse: (v: string) => number,
  apply: (b: RingBuilder, id: number, v: number) => void,
  shownValue: (d: BuilderDevice) => string,
): Handler {
  return async (ctx, b) => {
    const p = parseOptions(ctx.argv, DEVICE_OPTS);
    const jobs: [BuilderDevice[], number][] = [];
    if (!usesOptionForm(p)) {
      for (const [sv, v] of pairs(p.args, cmd)) jobs.push([search(b, sv), parse(v)]);
    } else {
      if (p.args.length !== 1) throw usage(cmd);
      jobs.push([b.searchDevs(searchFromOptions(p)), parse(p.args[0] as string)]);
    }
    for (const [devs, v] of jobs) {
      await checkDevs(ctx, devs, p.opts.has('yes'), `Are you sure you want to update the ${what} for these %s devices? (y/N) `);
      for (const d of devs) {
        apply(b, d.id, v);
        ctx.io.out(`${formatDevice(d)} ${what} set to ${shownValue(d)}`);
      }
    }
    await save(ctx, b);
    next(ctx, rebalanceNext(ctx));
    return EXIT_SUCCESS;
  };
}

const setWeight = setter(
  'set_weight',
  'weight',
  (v) => {
    const w = parseFloatArg(v, 'weight');
    if (w < 0) throw new UsageError(`Invalid weight ${JSON.stringify(v)}: must not be negative`);
    return w;
  },
  (b, id, w) => b.setDevWeight(id, w),
  (d) => pyFloat(d.weight),
);
const setRegion = setter('set_region', 'region', (v) => parseIntArg(v, 'region'), (b, id, r) => b.setDevRegion(id, r), (d) => String(d.region));
const setZone = setter('set_zone', 'zone', (v) => parseIntArg(v, 'zone'), (b, id, z) => b.setDevZone(id, z), (d) => String(d.zone));

async function setInfo(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, DEVICE_OPTS);
  const jobs: [BuilderDevice[], Record<string, string | number>][] = [];
  if (!usesOptionForm(p)) {
    for (const [sv, cv] of pairs(p.args, 'set_info')) jobs.push([search(b, sv), parseChangeValue(cv)]);
  } else {
    const change: Record<string, string | number> = {};
    for (const [opt, key] of [
      ['change-ip', 'ip'],
      ['change-port', 'port'],
      ['change-replication-ip', 'replicationIp'],
      ['change-replication-port', 'replicationPort'],
      ['change-device', 'device'],
      ['change-meta', 'meta'],
    ] as const) {
      const v = p.opts.get(opt);
      if (v !== undefined && v !== '') change[key] = v as string | number;
    }
    jobs.push([b.searchDevs(searchFromOptions(p)), change]);
  }
  for (const [devs, change] of jobs) {
    await checkDevs(ctx, devs, p.opts.has('yes'), 'Are you sure you want to update the info for these %s devices? (y/N) ');
    for (const d of devs) {
      const before = formatDevice(d);
      const test = { ...d, ...change };
      const clash = liveDevs(b).find((o) => o.id !== d.id && o.ip === test.ip && o.port === test.port && o.device === test.device);
      if (clash) {
        throw new UsageError(`Device ${clash.id} already uses ${clash.ip}:${clash.port}/${clash.device}. The on-disk ring builder is unchanged.`);
      }
      b.setDevInfo(d.id, change);
      ctx.io.out(`Device ${before} is now ${formatDevice(b.devs[d.id] as BuilderDevice)}`);
    }
  }
  await save(ctx, b);
  next(ctx, `swiftlet-ring-builder ${ctx.builderFile} write_ring (no rebalance needed), then copy ${ctx.ringFile} to every node`);
  return EXIT_SUCCESS;
}

async function setOverload(ctx: Ctx, b: RingBuilder): Promise<number> {
  // Swift reads the value from argv as is, so "-1" is a (refused) value, not an option.
  const args = ctx.argv;
  if (args.length < 1) throw usage('set_overload');
  let raw = args[0] as string;
  const percent = raw.endsWith('%');
  if (percent) raw = raw.replace(/%+$/, '');
  let v = parseFloatArg(raw, 'overload');
  if (percent) v *= 0.01;
  if (v < 0) throw new UsageError('Overload must be non-negative.');
  let status = EXIT_SUCCESS;
  if (v > 1 && !percent) {
    ctx.io.out('!?! Warning overload is greater than 100% !?!');
    status = EXIT_WARNING;
  }
  b.setOverload(v);
  ctx.io.out(`The overload factor is now ${fixed(b.overload * 100, 2)}% (${fixed(b.overload, 6)})`);
  ctx.io.out('The change will take effect after the next rebalance.');
  await save(ctx, b);
  next(ctx, rebalanceNext(ctx));
  return status;
}

async function setReplicas(ctx: Ctx, b: RingBuilder): Promise<number> {
  // Swift reads the value from argv as is, so "-1" is a (refused) value, not an option.
  const args = ctx.argv;
  if (args.length < 1) throw usage('set_replicas');
  const v = parseFloatArg(args[0] as string, 'replica count');
  if (v < 1) throw new UsageError('Replica count must be at least 1.');
  b.setReplicas(v);
  ctx.io.out(`The replica count is now ${fixed(b.replicas, 6)}.`);
  ctx.io.out('The change will take effect after the next rebalance.');
  await save(ctx, b);
  next(ctx, rebalanceNext(ctx));
  return EXIT_SUCCESS;
}

async function setMinPartHours(ctx: Ctx, b: RingBuilder): Promise<number> {
  // Swift reads the value from argv as is, so "-1" is a (refused) value, not an option.
  const args = ctx.argv;
  if (args.length < 1) throw usage('set_min_part_hours');
  const h = parseIntArg(args[0] as string, 'min_part_hours');
  b.setMinPartHours(h);
  ctx.io.out(`The minimum number of hours before a partition can be reassigned is now set to ${h}`);
  await save(ctx, b);
  return EXIT_SUCCESS;
}

function moveReport(b: RingBuilder, r: RebalanceResult): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const [id, m] of [...r.movesByDevice.entries()].sort((x, y) => x[0] - y[0])) {
    const d = b.devs[id];
    out.push({
      id,
      device: d ? `r${d.region}z${d.zone}-${d.ip}:${d.port}/${d.device}` : '(removed)',
      weight: d?.weight ?? 0,
      before: m.before,
      after: m.after,
      delta: m.after - m.before,
    });
  }
  return out;
}

async function rebalance(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, [
    { long: 'force', short: 'f', type: 'flag' },
    { long: 'seed', short: 's', type: 'string' },
    { long: 'debug', short: 'd', type: 'flag' },
    { long: 'dry-run', short: 'n', type: 'flag' },
    JSON_OPT,
  ]);
  const seedRaw = (p.opts.get('seed') as string | undefined) ?? p.args[0];
  const seed = seedRaw === undefined ? undefined : /^-?\d+$/.test(seedRaw) ? Number(seedRaw) : seedRaw;
  const opts = seed === undefined ? {} : { seed };
  const devsChanged = b.devsChanged;
  const secondsLeft = b.minPartSecondsLeft();
  const lastBalance = b.getBalance();
  const lastDispersion = b.everRebalanced ? b.dispersion : undefined;
  const dry = p.opts.has('dry-run');
  const asJson = p.opts.has('json');
  let r: RebalanceResult;
  let target = b;
  try {
    if (dry) {
      target = b.clone();
      r = target.rebalance(opts);
    } else {
      r = b.rebalance(opts);
    }
  } catch (err) {
    throw new UsageError(`Rebalance failed: ${(err as Error).message}`);
  }
  const pct = (100 * r.changedParts) / b.parts;
  const status =
    r.dispersion > 0 ? EXIT_WARNING : r.balance > 5 && r.balance / 100 > b.overload ? EXIT_WARNING : EXIT_SUCCESS;
  const warnings = failureDomainWarnings(target);
  if (dry) {
    if (asJson) {
      json(ctx.io, {
        dry_run: true, changed_part_replicas: r.changedParts, changed_percent: pct, balance: r.balance,
        dispersion: r.dispersion, removed_devices: r.removedDevs, devices: moveReport(target, r), notes: r.notes, warnings,
      });
      return status;
    }
    const io = ctx.io;
    io.out(`Dry run: would reassign ${r.changedParts} (${fixed(pct, 2)}%) partitions. Balance would be ${fixed(r.balance, 2)}.  Dispersion would be ${fixed(r.dispersion, 2)}`);
    io.out('Part-replicas per device (before -> after):');
    for (const m of moveReport(target, r)) {
      const delta = m['delta'] as number;
      io.out(`  ${`d${m['id'] as number}`.padEnd(6)} ${String(m['device']).padEnd(36)} weight ${padL(fixed(m['weight'] as number, 2), 8)}  ${padL(m['before'] as number, 8)} -> ${padL(m['after'] as number, 8)}  (${delta >= 0 ? '+' : ''}${delta})`);
    }
    for (const n of r.notes) io.out(`Note: ${n}`);
    for (const w of warnings) io.err(`WARNING: ${w}`);
    io.out('Nothing was written.');
    return status;
  }
  const io = ctx.io;
  if (!(r.changedParts || p.opts.has('force') || r.removedDevs)) {
    if (asJson) {
      json(io, { saved: false, reason: 'No partitions could be reassigned.', min_part_seconds_left: b.minPartSecondsLeft() });
      return EXIT_WARNING;
    }
    io.out('No partitions could be reassigned.');
    if (secondsLeft > 0) {
      io.out(`The time between rebalances must be at least min_part_hours: ${b.minPartHours} hours (${timedelta(b.minPartSecondsLeft())} remaining)`);
    } else {
      io.out('There is no need to do so at this time');
    }
    return EXIT_WARNING;
  }
  let cowardly = true;
  if (p.opts.has('force') || devsChanged) cowardly = false;
  else {
    const balanceChanged = Math.abs(lastBalance - r.balance) >= 1 || (lastBalance === MAX_BALANCE && r.balance === MAX_BALANCE);
    const dispersionChanged = lastDispersion === undefined || Math.abs(lastDispersion - r.dispersion) >= 1;
    if (balanceChanged || dispersionChanged) cowardly = false;
  }
  if (cowardly) {
    if (asJson) {
      json(io, { saved: false, reason: 'Cowardly refusing to save rebalance as it did not change at least 1%.' });
      return EXIT_WARNING;
    }
    io.out('Cowardly refusing to save rebalance as it did not change at least 1%.');
    return EXIT_WARNING;
  }
  try {
    b.validate();
  } catch (err) {
    throw new UsageError(`Rebalance produced an invalid ring: ${(err as Error).message}`);
  }
  if (asJson) {
    json(ctx.io, {
      saved: true, changed_part_replicas: r.changedParts, changed_percent: pct, balance: r.balance, dispersion: r.dispersion,
      removed_devices: r.removedDevs, devices: moveReport(b, r), notes: r.notes, warnings,
    });
  } else {
    io.out(`Reassigned ${r.changedParts} (${fixed(pct, 2)}%) partitions. Balance is now ${fixed(r.balance, 2)}.  Dispersion is now ${fixed(b.dispersion, 2)}`);
    if (b.dispersion > 0) {
      io.out('-'.repeat(79));
      io.out(`NOTE: Dispersion of ${fixed(b.dispersion, 6)} indicates some parts are not\n      optimally dispersed.\n\n      You may want to adjust some device weights, increase\n      the overload or review the dispersion report.`);
      io.out('-'.repeat(79));
    } else if (r.balance > 5 && r.balance / 100 > b.overload) {
      io.out('-'.repeat(79));
      io.out(`NOTE: Balance of ${fixed(r.balance, 2)} indicates you should push this `);
      io.out(`      ring, wait at least ${b.minPartHours} hours, and rebalance/repush.`);
      io.out('-'.repeat(79));
    }
    for (const w of warnings) io.err(`WARNING: ${w}`);
  }
  const ring = b.getRingData();
  await ring.save(backupName(ctx, ctx.ringFile));
  await ring.save(ctx.ringFile);
  await save(ctx, b);
  next(ctx, pushNext(ctx, fileMd5(ctx.ringFile)));
  return status;
}

async function writeRing(ctx: Ctx, b: RingBuilder): Promise<number> {
  parseOptions(ctx.argv, []);
  if (liveDevs(b).length === 0) throw new UsageError('Unable to write empty ring.');
  if (!b.everRebalanced) {
    ctx.io.out('Warning: Writing a ring with no partition assignments but with devices; did you forget to run "rebalance"?');
  }
  const ring = b.getRingData();
  await ring.save(backupName(ctx, ctx.ringFile));
  await ring.save(ctx.ringFile);
  next(ctx, pushNext(ctx, fileMd5(ctx.ringFile)));
  return EXIT_SUCCESS;
}

async function pretend(ctx: Ctx, b: RingBuilder): Promise<number> {
  parseOptions(ctx.argv, []);
  b.pretendMinPartHoursPassed();
  await save(ctx, b);
  next(ctx, rebalanceNext(ctx));
  return EXIT_SUCCESS;
}

async function dispersion(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, [
    { long: 'verbose', short: 'v', type: 'flag' },
    { long: 'recalculate', type: 'flag' },
    JSON_OPT,
  ]);
  if (!b.everRebalanced) {
    throw new UsageError(`Specified builder file "${ctx.builderFile}" is not rebalanced yet. Please rebalance first.`);
  }
  let filter: RegExp | undefined;
  if (p.args[0] !== undefined) {
    try {
      filter = new RegExp(`^(?:${p.args[0]})`);
    } catch (err) {
      throw new UsageError(`Invalid tier filter ${JSON.stringify(p.args[0])}: ${(err as Error).message}`);
    }
  }
  const report = b.dispersionReport();
  const tiers = report.tiers.filter((t) => !filter || filter.test(t.tier));
  let worst: string | null = null;
  let maxDisp = 0;
  for (const t of tiers) {
    if (t.pct > maxDisp) {
      maxDisp = t.pct;
      worst = t.tier;
    }
  }
  const balance = b.getBalance();
  const required = b.getRequiredOverload();
  const status = worst ? EXIT_WARNING : EXIT_SUCCESS;
  if (p.opts.has('json')) {
    json(ctx.io, {
      dispersion: report.dispersion, balance, overload: b.overload, required_overload: required,
      worst_tier: worst, max_dispersion: maxDisp,
      tiers: tiers.map((t) => ({ tier: t.tier, placed_parts: t.placedParts, percent: t.pct, max_replicas: t.max, at_risk: t.atRisk, replicas: t.replicas })),
    });
    return status;
  }
  const io = ctx.io;
  io.out(`Dispersion is ${fixed(report.dispersion, 6)}, Balance is ${fixed(balance, 6)}, Overload is ${fixed(b.overload * 100, 2)}%`);
  io.out(`Required overload is ${fixed(required * 100, 6)}%`);
  if (worst) io.out(`Worst tier is ${fixed(maxDisp, 6)} (${worst})`);
  if (p.opts.has('verbose') && tiers.length > 0) {
    const range = Array.from({ length: Math.ceil(b.replicas + 1) }, (_, i) => i);
    const pw = Math.max(String(b.parts).length, 5);
    const tw = Math.max(30, ...tiers.map((t) => t.tier.length));
    const header = `${'Tier'.padEnd(tw)} ${padL('Parts', pw)} ${padL('%', 6)} ${padL('Max', 6)} ${range.map((i) => padL(i, pw)).join(' ')}`;
    io.out('-'.repeat(header.length));
    io.out(header);
    io.out('-'.repeat(header.length));
    for (const t of tiers) {
      const counts = range.map((i) => padL(t.replicas[i] ?? 0, pw)).join(' ');
      io.out(`${t.tier.padEnd(tw)} ${padL(t.placedParts, pw)} ${padL(fixed(t.pct, 2), 6)} ${padL(t.max, 6)} ${counts}`);
    }
  }
  return status;
}

async function validate(ctx: Ctx, b: RingBuilder): Promise<number> {
  const p = parseOptions(ctx.argv, [JSON_OPT]);
  try {
    b.validate();
  } catch (err) {
    if (p.opts.has('json')) json(ctx.io, { valid: false, error: (err as Error).message });
    throw new UsageError(`Validation failed: ${(err as Error).message}`);
  }
  if (p.opts.has('json')) json(ctx.io, { valid: true });
  return EXIT_SUCCESS;
}

function searchArgs(ctx: Ctx, b: RingBuilder, cmd: string, many: boolean): { devs: BuilderDevice[]; asJson: boolean } {
  const p = parseOptions(ctx.argv, DEVICE_OPTS);
  let devs: BuilderDevice[] = [];
  if (p.args.length > 0) {
    if (usesOptionForm(p) || (!many && p.args.length !== 1)) throw usage(cmd);
    for (const a of p.args) devs.push(...search(b, a));
  } else if (usesOptionForm(p)) {
    devs = b.searchDevs(searchFromOptions(p));
  } else throw usage(cmd);
  devs = [...new Map(devs.map((d) => [d.id, d])).values()];
  return { devs, asJson: p.opts.has('json') };
}

async function searchCmd(ctx: Ctx, b: RingBuilder): Promise<number> {
  const { devs, asJson } = searchArgs(ctx, b, 'search', false);
  if (devs.length === 0) throw new UsageError('No matching devices found');
  const perDev = b.balancePerDev();
  if (asJson) {
    json(ctx.io, { devices: devs.map((d) => devJson(d, perDev.get(d.id) ?? 0)) });
    return EXIT_SUCCESS;
  }
  ctx.io.out('Devices:    id  region  zone      ip address  port  replication ip  replication port      name weight partitions balance meta');
  for (const d of devs) {
    ctx.io.out(
      `         ${padL(d.id, 5)} ${padL(d.region, 7)} ${padL(d.zone, 5)} ${padL(d.ip, 15)} ${padL(d.port, 5)} ` +
        `${padL(d.replicationIp, 15)} ${padL(d.replicationPort, 17)} ${padL(d.device, 9)} ${padL(fixed(d.weight, 2), 6)} ` +
        `${padL(d.parts, 10)} ${padL(fixed(perDev.get(d.id) ?? 0, 2), 7)} ${d.meta}`,
    );
  }
  return EXIT_SUCCESS;
}

async function listParts(ctx: Ctx, b: RingBuilder): Promise<number> {
  if (!b.everRebalanced) {
    throw new UsageError(`Specified builder file "${ctx.builderFile}" is not rebalanced yet. Please rebalance first.`);
  }
  const { devs, asJson } = searchArgs(ctx, b, 'list_parts', true);
  if (devs.length === 0) throw new UsageError('No matching devices found');
  const parts = b.listParts(devs.map((d) => d.id));
  if (parts.length === 0) throw new UsageError('No matching devices found');
  if (asJson) {
    json(ctx.io, { partitions: parts.map(([partition, matches]) => ({ partition, matches })) });
    return EXIT_SUCCESS;
  }
  ctx.io.out('Partition   Matches');
  for (const [part, n] of parts) ctx.io.out(`${padL(part, 9)}   ${padL(n, 7)}`);
  return EXIT_SUCCESS;
}

export const COMMANDS: Record<string, Handler> = {
  add,
  remove,
  set_weight: setWeight,
  set_region: setRegion,
  set_zone: setZone,
  set_info: setInfo,
  set_overload: setOverload,
  set_replicas: setReplicas,
  set_min_part_hours: setMinPartHours,
  rebalance,
  write_ring: writeRing,
  pretend_min_part_hours_passed: pretend,
  dispersion,
  validate,
  search: searchCmd,
  list_parts: listParts,
};

export { create as createCommand, summary as summaryCommand };
export type { Parsed };
