#!/usr/bin/env -S node --initial-old-space-size=48
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/proxy-server.ts.
import '../dist/bin/proxy-server.js';
