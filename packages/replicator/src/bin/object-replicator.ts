process.stderr.write('swiftlet-object-replicator: not implemented yet\n');
process.exitCode = 2;
