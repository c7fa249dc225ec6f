import { runDbServer } from '../server-main.js';

await runDbServer('container', process.argv.slice(2));
