process.stderr.write('swiftlet-container-server: not implemented yet\n');
process.exitCode = 2;
