process.stderr.write('swiftlet-cluster: not implemented yet\n');
process.exitCode = 2;
