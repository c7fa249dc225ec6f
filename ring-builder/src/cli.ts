/**
 * swiftlet-ring-builder: swift-ring-builder's commands, output and exit codes (0 done, 1 warning,
 * 2 error), plus `rebalance --dry-run`, `--json` on read commands, failure-domain warnings and
 * `get-nodes`. Bad input gets one line on stderr and exit 2, and the builder file is not touched.
 */
import { RingBuilder } from '@swiftlet/ring';
import { UsageError } from './args.js';
import { COMMANDS, COMMAND_USAGE, EXIT_ERROR, createCommand, summaryCommand, type Ctx, type Io } from './commands.js';
import { getNodes } from './get-nodes.js';

const io: Io = {
  out: (line = '') => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

function help(): void {
  io.out('swiftlet-ring-builder (swift-ring-builder compatible)\n');
  io.out('swiftlet-ring-builder <builder_file>                 summary: devices, balance, dispersion, ring file md5');
  for (const u of Object.values(COMMAND_USAGE)) io.out(`swiftlet-ring-builder <builder_file> ${u}`);
  io.out('swiftlet-ring-builder get-nodes RING.gz ACCOUNT [CONTAINER [OBJECT]] [--swift-conf FILE] [--json] [--all-handoffs]');
  io.out('\n<search-value>: d<id>r<region>z<zone>-<ip>:<port>R<r_ip>:<r_port>/<device_name>_<meta>, every part optional');
  io.out('Exit codes: 0 = operation successful\n            1 = operation completed with warnings\n            2 = error');
}

/** Swift's parse_builder_ring_filename_args. */
function filenames(first: string): { builderFile: string; ringFile: string } {
  if (first.endsWith('.ring.gz')) return { ringFile: first, builderFile: `${first.slice(0, -'.ring.gz'.length)}.builder` };
  if (first.endsWith('.builder')) return { builderFile: first, ringFile: `${first.slice(0, -'.builder'.length)}.ring.gz` };
  return { builderFile: first, ringFile: `${first}.ring.gz` };
}

async function main(argv: string[]): Promise<number> {
  if (argv.length === 0 || argv[0] === '-h' || argv[0] === '--help') {
    help();
    return 0;
  }
  if (argv[0] === 'get-nodes') return getNodes(argv.slice(1), io);
  const { builderFile, ringFile } = filenames(argv[0] as string);
  // `X.builder --json`: options of the summary.
  const command = argv[1] === undefined || argv[1].startsWith('-') ? 'default' : argv[1];
  if (command !== 'default' && command !== 'create' && !(command in COMMANDS)) {
    throw new UsageError(`Unknown command: ${command}`);
  }
  if (builderFile !== argv[0]) {
    const note = `Note: using ${builderFile} instead of ${argv[0]} as builder file`;
    // Swift prints it on stdout; keep --json output parseable.
    if (argv.includes('--json')) io.err(note);
    else io.out(note);
  }
  const ctx: Ctx = { io, builderFile, ringFile, argv: argv.slice(command === 'default' ? 1 : 2) };
  if (command === 'create') return createCommand(ctx);
  const builder = await RingBuilder.load(builderFile);
  if (command === 'default') return summaryCommand(ctx, builder);
  return (COMMANDS[command] as (c: Ctx, b: RingBuilder) => Promise<number>)(ctx, builder);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // Bad input and builder errors: one line naming the problem.
    const msg = err instanceof Error ? err.message : String(err);
    io.err(err instanceof UsageError ? msg : (msg.split('\n')[0] as string));
    process.exitCode = EXIT_ERROR;
  },
);
