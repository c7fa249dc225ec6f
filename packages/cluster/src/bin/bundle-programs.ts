/** `make build`'s last step: writes every program's one-file bundle (@swiftlet/common/programs). */
import { relative } from 'node:path';
import { REPO_ROOT } from '@swiftlet/common/programs';
import { bundlePrograms } from '../bundle-programs.js';

const written = await bundlePrograms();
process.stdout.write(`bundled ${written.map((p) => relative(REPO_ROOT, p)).join(', ')}\n`);
