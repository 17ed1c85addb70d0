// Files named by a user or an attacker (a layout's blobs, --provenance, --key, a lockfile, a layout
// handed over for inspect): opened without blocking and checked to be regular files before a byte is
// read. A plain open() of a FIFO blocks until a writer comes — forever, in a libuv thread — and
// /dev/zero or /dev/urandom read whole is an unbounded allocation; stat() first and read() after is
// racy (the name can be swapped in between). So: open O_NONBLOCK (a FIFO opens at once; a regular
// file ignores the flag), fstat the descriptor we hold, refuse anything but a regular file, and read
// at most `cap` bytes from that same descriptor.
import { closeSync, constants, createReadStream, fstatSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { Readable } from 'node:stream';

function kindOf(st: { isDirectory(): boolean; isFIFO(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean; isSocket(): boolean }): string {
  return st.isDirectory() ? 'a directory' : st.isFIFO() ? 'a FIFO' : st.isCharacterDevice() || st.isBlockDevice() ? 'a device' : st.isSocket() ? 'a socket' : 'something else';
}

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK;

/** The whole of regular file `path`, at most `cap` bytes; else an Error saying why (callers add their code). */
export async function readRegularFile(path: string, cap: number): Promise<Buffer> {
  const fh = await open(path, FLAGS);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new Error(`${kindOf(st)}, not a regular file`);
    if (st.size > cap) throw new Error(`${st.size} bytes, more than the ${cap} expected`);
    // Read from the descriptor we checked, one byte past the size seen: a file growing under us is caught.
    const buf = Buffer.alloc(st.size + 1);
    let got = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, got, buf.length - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
      if (got === buf.length) throw new Error('it grew while it was read');
    }
    return buf.subarray(0, got);
  } finally {
    await fh.close();
  }
}

/** A stream of regular file `path`; a FIFO, device, socket or directory is an error on the stream. */
export function openRegularFile(path: string): Readable {
  let fd: number;
  try {
    fd = openSync(path, FLAGS);
  } catch (e) {
    return failed(e as Error);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error(`${path} is ${kindOf(st)}, not a regular file`);
  } catch (e) {
    closeSync(fd);
    return failed(e as Error);
  }
  return createReadStream('', { fd });
}

function failed(e: Error): Readable {
  // destroy() emits 'error' on a later tick: listeners attached by the caller still see it.
  return new Readable({ read() {} }).destroy(e);
}
