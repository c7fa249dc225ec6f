import { runDbServer } from '../server-main.js';

await runDbServer('account', process.argv.slice(2));
