// Prints the Markdown table of one replication benchmark run (swift.sh + swiftlet.mjs outputs).
import { readFileSync } from 'node:fs';
const [swift, ours] = process.argv.slice(2).map((f) => JSON.parse(readFileSync(f, 'utf8')));
const r = (a, b) => (a && b ? `${(a / b).toFixed(1)}×` : 'n/a');
const f = (n, d = 1) => (n === undefined ? 'n/a' : Number(n).toFixed(d));
const rows = [
  ['(a) wiped device refilled (s)', f(swift.a_refillS), f(ours.a_refillS), r(swift.a_refillS, ours.a_refillS), '≥ 5× faster'],
  ['(a) passes needed / objects restored', `${swift.a_passes} / ${swift.a_restored}`, `${ours.a_passes} / ${ours.a_restored}`, '', ''],
  ['(b) in-sync pass, 4 nodes at once, 1,024 partitions (s)', f(swift.b_inSyncPassWallS), f(ours.b_inSyncPassWallS), r(swift.b_inSyncPassWallS, ours.b_inSyncPassWallS), '≥ 10× faster'],
  ["(b') the same pass as each replicator times it, process start excluded (s; slowest of four)", f(swift.b_passS, 2), f(ours.b_passS, 2), r(swift.b_passS, ours.b_passS), ''],
  ['(c) bytes sent / bytes missing', 'not measured', `${ours.c_bytesSent} / ${ours.c_bytesMissing} = ${f(ours.c_ratio, 3)}`, '', '< 1.1'],
  ['max RSS of one replicator (MiB)', `${swift.maxRssMiB}`, `${ours.maxRssMiB}`, '', '< 150 MiB'],
];
console.log(`Objects: ${ours.objects} of ${ours.objectBytes} bytes, all with a replica on the wiped device; 4 nodes, 3 replicas, 1,024 partitions.\n`);
console.log('| measure | Swift 2.30.1 | Swiftlet | Swift / Swiftlet | target |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
if (swift.a_runsS || ours.a_runsS) {
  const list = (x) => (x.a_runsS ?? [x.a_refillS]).map((v) => f(v, 1)).join(', ');
  console.log(`\n(a) is the median of its runs: Swift ${list(swift)} s; Swiftlet ${list(ours)} s.`);
}
if (swift.b_passRunsS || ours.b_passRunsS) {
  const list = (x) => (x.b_passRunsS ?? []).map((v) => f(v, 2)).join(', ');
  console.log(`\n(b') is the median of its runs: Swift ${list(swift)} s; Swiftlet ${list(ours)} s.`);
}
if (swift.b_runsS || ours.b_runsS) {
  const list = (x) => (x.b_runsS ?? [x.b_inSyncPassWallS]).map((v) => f(v, 2)).join(', ');
  console.log(`\n(b) is the median of its runs: Swift ${list(swift)} s; Swiftlet ${list(ours)} s.`);
}
