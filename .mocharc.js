// Mocha runs the test files in parallel, one worker process per core (each worker has its own
// SoftHSM token directory, free ports and temp dirs, so files do not collide).
// XKS_TEST_PASS splits the suite in two for scripts/test.sh:
//   parallel  every file but the latency measurements, in parallel;
//   timing    the latency measurements alone, serially: they compare p99 against a baseline
//             taken just before, and a neighbour worker's load is what they would measure.
// Unset, every file runs in parallel. Files named on the command line run alone, serially
// (otherwise mocha would add them to the configured spec and run the whole suite).
'use strict';
const os = require('node:os');

const SPEC = 'dist/test/**/*.test.js';
const TIMING = ['dist/test/integration/stalled-hsm-isolation.test.js'];

const base = { timeout: 30000, reporter: 'spec', exit: true };
const parallel = { parallel: true, jobs: os.availableParallelism() };
const namedFiles = process.argv.slice(2).some((arg) => !arg.startsWith('-') && /\.js$|^dist\//.test(arg));

function config(pass) {
  if (namedFiles) return base;
  switch (pass) {
    case undefined:
    case '':
      return { ...base, ...parallel, spec: [SPEC] };
    case 'parallel':
      return { ...base, ...parallel, spec: [SPEC], ignore: TIMING };
    case 'timing':
      return { ...base, spec: TIMING };
    default:
      throw new Error(`XKS_TEST_PASS must be parallel or timing, not ${pass}`);
  }
}

module.exports = config(process.env.XKS_TEST_PASS);
