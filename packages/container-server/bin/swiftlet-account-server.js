#!/usr/bin/env node
// Thin launcher so that the bin exists before the TypeScript build; the program is src/bin/account-server.ts.
import '../dist/bin/account-server.js';
