// A small Node.js workload profiled by the real Pyroscope Node SDK (from npm), uploading to a real
// hearth. Used by tests/integration/test_sdk.py.
//
// usage: node sdk_workload.mjs <package> <serverAddress> <appName> <seconds> [tenantID] [authToken]
//   <package>: "@pyroscope/nodejs" (current) or "pyroscope-nodejs-041" (the 0.4.1 release, which
//   uploads with axios + form-data instead of fetch + FormData)
// Prints one JSON line {"package": ..., "version": ...} and exits 0 once the SDK has flushed.

import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const [pkg, serverAddress, appName, secondsArg, tenantID, authToken] = process.argv.slice(2);
if (!pkg || !serverAddress || !appName || !secondsArg) {
  console.error('usage: node sdk_workload.mjs <package> <serverAddress> <appName> <seconds> [tenantID] [authToken]');
  process.exit(2);
}
const require = createRequire(import.meta.url);
const Pyroscope = require(pkg);
const here = dirname(fileURLToPath(import.meta.url));
const version = JSON.parse(readFileSync(join(here, 'node_modules', pkg, 'package.json'), 'utf8')).version;

Pyroscope.init({
  serverAddress,
  appName,
  flushIntervalMs: 1000,
  tags: { hearth_test: 'sdk', sdk_version: version },
  ...(tenantID ? { tenantID } : {}),
  ...(authToken ? { authToken } : {}),
});
Pyroscope.start();

// Named functions the test looks for in the flame graphs.
function hearthSdkSpinPrimes(limit) {
  let count = 0;
  for (let n = 2; n < limit; n++) {
    let prime = true;
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false;
        break;
      }
    }
    if (prime) count++;
  }
  return count;
}

const retained = [];
function hearthSdkAllocate() {
  const chunk = [];
  for (let i = 0; i < 2000; i++) chunk.push({ i, s: 'x'.repeat(64) });
  retained.push(chunk);
  if (retained.length > 200) retained.shift();
}

const deadline = Date.now() + Number(secondsArg) * 1000;
let sink = 0;
await new Promise((resolve) => {
  const step = () => {
    const until = Date.now() + 20;
    while (Date.now() < until) sink += hearthSdkSpinPrimes(20000);
    hearthSdkAllocate();
    if (Date.now() < deadline) setImmediate(step);
    else resolve();
  };
  step();
});
await Pyroscope.stop();
// Give the last upload (started by stop) time to complete: the SDK only logs failed uploads.
await new Promise((r) => setTimeout(r, 1500));
console.log(JSON.stringify({ package: pkg, version, sink: sink > 0 }));
