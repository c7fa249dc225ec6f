#!/usr/bin/env node
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/container-server.ts.
import '../dist/bin/container-server.js';
