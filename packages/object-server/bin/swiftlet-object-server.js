#!/usr/bin/env -S node --initial-old-space-size=48
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/object-server.ts.
import '../dist/bin/object-server.js';
