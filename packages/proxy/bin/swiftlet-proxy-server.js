#!/usr/bin/env -S node --heap-growing-percent=50
// Thin launcher, there before the build: runs the program (src/bin/proxy-server.ts) from its bundle when that
// is up to date, else from its compiled modules (@swiftlet/common/programs says why).
import { programEntry } from '@swiftlet/common/programs';

await import(programEntry('proxy-server'));
