process.stderr.write('swiftlet-object-updater: not implemented yet\n');
process.exitCode = 2;
