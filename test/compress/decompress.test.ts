import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { decompress, type Compression } from '../../src/compress/decompress.js';

const data = Buffer.concat([randomBytes(50_000), Buffer.alloc(50_000, 'a')]);

function compressWith(tool: string, args: string[]): Buffer {
  return spawnSync(tool, args, { input: data }).stdout as Buffer;
}

async function collect(r: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of r) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

for (const [kind, tool, args] of [['xz', 'xz', ['-c']], ['zstd', 'zstd', ['-c', '-q']], ['gzip', 'gzip', ['-c', '-n']]] as [Compression, string, string[]][]) {
  const have = spawnSync(tool, ['--version']).status === 0;
  test(`${kind}: round trip, and a truncated stream is an error, not a short clean end`, { skip: !have && `${tool} is not installed` }, async () => {
    const packed = compressWith(tool, args);
    assert.deepEqual(await collect(decompress(Readable.from([packed.subarray(0, 100), packed.subarray(100)]), kind, 'x')), data);
    await assert.rejects(collect(decompress(Readable.from([packed.subarray(0, packed.length - 4)]), kind, 'x')), (e: any) => ['DECOMPRESS_FAILED', 'Z_BUF_ERROR'].includes(e.code));
  });
}
