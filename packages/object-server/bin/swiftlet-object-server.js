#!/usr/bin/env node
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/object-server.ts.
import '../dist/bin/object-server.js';
