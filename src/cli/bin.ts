#!/usr/bin/env node
// The executable: the only place that touches process.
import { main, reportUncaught } from './main.js';

const io = { stdout: process.stdout, stderr: process.stderr, env: process.env, stdin: process.stdin };
// A throw no one awaits (an unhandled rejection is one too) ends the process as any error does.
process.on('uncaughtException', (e) => process.exit(reportUncaught(e, io)));
process.exitCode = await main(process.argv.slice(2), io);
