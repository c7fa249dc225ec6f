process.stderr.write('swiftlet-account-server: not implemented yet\n');
process.exitCode = 2;
