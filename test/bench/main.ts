// `npm run bench`: figures and ratios against baselines measured in the same run (never asserted:
// speed targets are read here, not enforced by unit tests).
import { benchBuild } from './build.js';
import { benchCopy } from './copy.js';
import { benchGzip } from './gzip.js';
import { benchLock } from './lock.js';
import { benchPush } from './push.js';

const sections: [string, () => Promise<string[]>][] = [
  ['lock', benchLock],
  ['build', benchBuild],
  ['push', benchPush],
  ['copy', benchCopy],
  ['gzip', benchGzip],
];
// `npm run bench -- gzip` runs only the named sections.
const only = process.argv.slice(2);
for (const [name, fn] of sections) {
  if (only.length > 0 && !only.includes(name)) continue;
  process.stdout.write(`== ${name}\n`);
  for (const line of await fn()) process.stdout.write(`${line}\n`);
}

// The gzip worker pool would otherwise be released only when idle; end promptly.
process.exit(0);
