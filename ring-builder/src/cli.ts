process.stderr.write('swiftlet-ring-builder: not implemented yet\n');
process.exitCode = 2;
