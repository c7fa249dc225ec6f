#!/usr/bin/env node
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/cluster.ts.
import '../dist/bin/cluster.js';
