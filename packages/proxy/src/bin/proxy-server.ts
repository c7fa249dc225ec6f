process.stderr.write('swiftlet-proxy-server: not implemented yet\n');
process.exitCode = 2;
