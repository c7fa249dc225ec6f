#!/usr/bin/env node
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/object-updater.ts.
import '../dist/bin/object-updater.js';
