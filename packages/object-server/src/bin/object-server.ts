process.stderr.write('swiftlet-object-server: not implemented yet\n');
process.exitCode = 2;
