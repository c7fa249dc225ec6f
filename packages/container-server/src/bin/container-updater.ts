process.stderr.write('swiftlet-container-updater: not implemented yet\n');
process.exitCode = 2;
