#!/usr/bin/env node
// The executable: the only place that touches process.
//
// `distill build` starts its staging worker first, before this thread loads the CLI and the library:
// the worker's start (a V8 isolate, its modules) then runs on an idle core while this one compiles
// modules and reads the locks, instead of after them, on the path to the first package staged. An
// idle worker never keeps the process alive (a build that only hits its layer cache lets it go).
if (process.argv[2] === 'build') {
  const { prestartStageWorker } = await import('../build/stage-pool.js');
  prestartStageWorker();
}
const { main } = await import('./main.js');

process.exitCode = await main(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin });
