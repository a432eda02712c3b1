#!/usr/bin/env node
// A `solc --standard-json` work-alike over solc-js: Standard JSON in on stdin, Standard
// JSON out on stdout. (solcjs's own CLI reads stdin synchronously, which fails with
// EAGAIN on large inputs through a pipe.)
'use strict';
const solc = require('solc');

if (!process.argv.includes('--standard-json')) {
  process.stderr.write('usage: solc.js --standard-json < input.json\n');
  process.exit(2);
}
const chunks = [];
process.stdin.on('data', (c) => chunks.push(c));
process.stdin.on('end', () => {
  process.stdout.write(solc.compile(Buffer.concat(chunks).toString('utf8')));
});
