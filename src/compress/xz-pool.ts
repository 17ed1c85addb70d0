// Long-lived `xz -dc` processes, each fed whole .xz members one after another. Starting a child per
// member costs a fork of the whole Node process (~8–16 ms of the calling thread's CPU at a build's
// 200+ MiB, and page faults after it), and liblzma in wasm costs ~1.45× the native CPU per byte; a
// few processes started once cost neither.
//
// xz decodes concatenated .xz Streams (and Stream Padding between them) into one continuous output,
// so the members have to be cut apart again. Each member is written as:
//
//   member | separator Stream (decodes to a 32-byte random marker + 8 KiB of zeros) | 8 KiB of zeros
//
// The member's decoded size comes from its own Indexes (xz-format.ts), so its output is the next that
// many bytes; the marker must follow at once. xz reads its input and writes its output in 8 KiB
// buffers (IO_BUFFER_SIZE) and waits for a full one before decoding or writing: the trailing 8 KiB of
// Stream Padding make it read past the separator, and the separator's 8 KiB of zeros make it write
// out everything the member decoded to and the marker.
//
// ATTACKER-CONTROLLED INPUT: the members. What makes this safe:
// - A member is decoded here only if its whole container parses (xzDecodedSize); anything else is
//   left to the caller's usual path, which reports it as before.
// - Its output ends only once the marker is seen right after the stated size: xz has then decoded
//   past the member's last Stream Footer, so it checked every Block's Check, the Index against the
//   Blocks and the Footer, and no byte of the member went missing or came from elsewhere. An Index
//   that lies makes xz fail, or the marker not be where it must be; the marker is random per member,
//   so a member cannot forge it.
// - When xz fails, it has stopped at the first member whose output has not been confirmed: that member
//   fails with what xz said (as a child of its own would have), and the members queued behind it are
//   written to a fresh process (a bounded number of times).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { DistillError } from '../errors.js';
import { MARKER_BYTES, SEPARATOR_ZEROS, separatorStream } from './xz-format.js';

/** Stream Padding after each separator: one xz input buffer. */
const TRAILING_PADDING = Buffer.alloc(8192);
/** Deaths of its process with no member to blame (killed from outside) before a member gives up. */
const MAX_ATTEMPTS = 3;
/** An idle process ends after this long (ms) without work. */
const IDLE_MS = 5_000;
/**
 * Output awaited this long (ms) with the reader not holding it back means the separator did not push
 * it out (an xz built with larger buffers than 8 KiB): the process's input is then ended, which makes
 * it decode and write out everything it was given (and exit); later members go to another process.
 */
const STALL_MS = 1_000;
/**
 * Output is handed on in chunks of at least this many bytes (the member's last one may be shorter).
 * xz writes 8 KiB at a time, and a reader that keeps up gets it so: ~12 KiB per chunk on average, ten
 * times as many as the in-process decoder's, each paying the stream machinery and the tar parser behind
 * it. Gathering cannot stall: the whole member has been written, so xz goes on until its last byte.
 */
const COALESCE = 128 * 1024;

interface Job {
  what: string;
  member: Buffer;
  size: number;
  marker: Buffer;
  out: Readable;
  /** Times its process died with no member to blame. */
  attempts: number;
  /** Decoded bytes of the member still to come. */
  left: number;
  /** Bytes of the marker matched so far. */
  matched: number;
  /** Output gathered for the consumer (see COALESCE). */
  acc: Buffer[];
  accBytes: number;
  /** The consumer went away: the output is counted and dropped. */
  dropped: boolean;
  /** Its output ended (the marker was seen) or it failed. */
  settled: boolean;
  /** The member's decoded bytes another way, when no xz can be started (the in-process decoder). */
  fallback: () => Readable;
  /** The process it is written to. */
  proc?: XzProcess;
  /** The fallback's output, once it took over. */
  instead?: Readable;
}

class XzProcess {
  readonly child: ChildProcessWithoutNullStreams;
  readonly jobs: Job[] = [];
  /** Decoded bytes this process still has to produce for its jobs (its load). */
  pending = 0;
  dead = false;
  private stderr = '';
  private spawnError: NodeJS.ErrnoException | undefined;
  private idle: NodeJS.Timeout | undefined;
  private killedByUs = false;
  /** Separator zeros still to come before the next member's output. */
  private zeros = 0;
  /** Ending (idle): takes no more jobs. */
  closing = false;

  private stall: NodeJS.Timeout | undefined;
  private progress = 0;

  constructor(
    private readonly pool: XzPool,
    cmd: string,
    args: string[],
  ) {
    this.child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => {
      if (this.stderr.length < 4096) this.stderr += s;
    });
    this.child.stdout.on('data', (c: Buffer) => this.output(c));
    this.child.on('error', (e: NodeJS.ErrnoException) => {
      this.spawnError ??= e;
    });
    this.child.on('close', (code, signal) => this.closed(code, signal));
    // Writing into a process that died raises EPIPE; 'close' reports the real cause.
    this.child.stdin.on('error', () => {});
    this.setRef(false);
  }

  submit(job: Job): void {
    if (this.idle !== undefined) clearTimeout(this.idle);
    this.idle = undefined;
    this.jobs.push(job);
    this.pending += job.size + MARKER_BYTES + SEPARATOR_ZEROS;
    this.setRef(true);
    this.progress = Date.now();
    this.stall ??= setInterval(() => this.checkStall(), STALL_MS / 2).unref();
    // One writev for the three.
    this.child.stdin.cork();
    this.child.stdin.write(job.member);
    this.child.stdin.write(separatorStream(job.marker));
    this.child.stdin.write(TRAILING_PADDING);
    this.child.stdin.uncork();
  }

  /** A job's consumer wants more: read on if the output now in front is its (or nobody's). */
  resume(job: Job): void {
    const head = this.jobs[0];
    if (head === job || head === undefined) this.child.stdout.resume();
  }

  drop(job: Job): void {
    job.dropped = true;
    job.acc = [];
    job.accBytes = 0;
    this.child.stdout.resume();
    this.cutDropped();
  }

  /**
   * A member nobody reads any more is not decoded to its end (it may be a bomb): once it is the one
   * being decoded, the process is killed, and the members behind it go to a fresh one.
   */
  private cutDropped(): void {
    const head = this.jobs[0];
    if (head === undefined || !head.dropped || head.settled || this.killedByUs) return;
    this.jobs.shift();
    head.settled = true;
    this.killedByUs = true;
    this.closing = true;
    this.child.kill('SIGKILL');
  }

  private checkStall(): void {
    if (this.jobs.length === 0 || this.closing) {
      clearInterval(this.stall);
      this.stall = undefined;
      return;
    }
    if (Date.now() - this.progress > STALL_MS && !this.child.stdout.isPaused()) {
      this.closing = true;
      this.child.stdin.end();
    }
  }

  private output(c: Buffer): void {
    if (this.killedByUs) return;
    this.progress = Date.now();
    let at = 0;
    while (at < c.length && !this.killedByUs) {
      if (this.zeros > 0) {
        // The rest of a finished member's separator (xz writes it out with the next member's output).
        const n = Math.min(this.zeros, c.length - at);
        for (let i = at; i < at + n; i++) {
          if (c[i] !== 0) {
            this.desync(this.jobs[0]);
            return;
          }
        }
        this.zeros -= n;
        this.pending -= n;
        at += n;
        continue;
      }
      const job = this.jobs[0];
      if (job === undefined) {
        this.desync(undefined);
        return;
      }
      if (job.left > 0) {
        const n = Math.min(job.left, c.length - at);
        job.left -= n;
        this.pending -= n;
        if (!job.dropped) {
          job.acc.push(c.subarray(at, at + n));
          job.accBytes += n;
          if (job.accBytes >= COALESCE || job.left === 0) this.flush(job);
        }
        at += n;
        continue;
      }
      const n = Math.min(MARKER_BYTES - job.matched, c.length - at);
      if (!c.subarray(at, at + n).equals(job.marker.subarray(job.matched, job.matched + n))) {
        this.desync(job);
        return;
      }
      job.matched += n;
      this.pending -= n;
      at += n;
      if (job.matched === MARKER_BYTES) {
        // xz decoded past the member's end: every Stream of it checked out, and it was exactly `size` bytes.
        job.settled = true;
        this.jobs.shift();
        this.zeros = SEPARATOR_ZEROS;
        if (!job.dropped) job.out.push(null);
        this.child.stdout.resume();
        if (this.jobs.length === 0) this.becameIdle();
        else this.cutDropped();
      }
    }
  }

  /** Hands on what was gathered for the job, as one chunk. */
  private flush(job: Job): void {
    const b = job.acc.length === 1 ? job.acc[0]! : Buffer.concat(job.acc, job.accBytes);
    job.acc = [];
    job.accBytes = 0;
    if (!job.out.push(b)) this.child.stdout.pause();
  }

  /** Output that is not where it must be: the job (if any) fails, the process is replaced. */
  private desync(job: Job | undefined): void {
    if (job !== undefined && !job.settled) {
      this.pool.fail(job, new DistillError('DECOMPRESS_FAILED', `${job.what}: xz: the decoded data does not match the sizes in the stream's index`, { hint: 'the compressed data is corrupt' }));
      this.jobs.splice(this.jobs.indexOf(job), 1);
    }
    this.killedByUs = true;
    this.closing = true;
    this.child.stdout.resume(); // discarded: 'close' comes once the output has ended
    this.child.kill('SIGKILL');
  }

  private becameIdle(): void {
    this.setRef(false);
    this.idle = setTimeout(() => {
      this.closing = true;
      this.child.stdin.end();
    }, IDLE_MS);
    this.idle.unref();
  }

  private closed(code: number | null, signal: NodeJS.Signals | null): void {
    this.dead = true;
    if (this.idle !== undefined) clearTimeout(this.idle);
    if (this.stall !== undefined) clearInterval(this.stall);
    this.pool.removed(this);
    const jobs = this.jobs.filter((j) => !j.settled);
    if (jobs.length === 0) return;
    if (this.spawnError !== undefined) {
      // No xz here (or it cannot be started): every job goes to the in-process decoder.
      this.pool.unavailable(this.spawnError);
      for (const j of jobs) this.pool.instead(j);
      return;
    }
    // xz stopped at the first member whose output is unconfirmed. If it failed (exit 1), that member
    // is the cause; if it was killed (not by us), no member is to blame and each is tried again.
    let rest = jobs;
    const blamed = this.killedByUs || (code !== null && code !== 0);
    if (code !== null && code !== 0 && !this.killedByUs) {
      const [culprit] = rest;
      rest = rest.slice(1);
      this.pool.fail(culprit!, new DistillError('DECOMPRESS_FAILED', `${culprit!.what}: xz exited ${code}: ${stderrLine(this.stderr) || 'corrupt input'}`, { hint: 'the compressed data is corrupt or truncated' }));
    }
    for (const j of rest) {
      if (j.left !== j.size || j.matched > 0) {
        // Part of it was handed on already; it cannot be started again.
        this.pool.fail(j, new DistillError('DECOMPRESS_FAILED', `${j.what}: xz stopped (${signal ?? `exit ${code}`}) while decoding it`, { hint: 'try again' }));
      } else this.pool.resubmit(j, signal ?? `exit ${code}`, !blamed);
    }
  }

  private setRef(on: boolean): void {
    for (const h of [this.child, this.child.stdin, this.child.stdout, this.child.stderr] as { ref(): void; unref(): void }[]) {
      if (on) h.ref();
      else h.unref();
    }
  }
}

/** A few long-lived `xz -dc` processes (at most `size`), each decoding whole members in order. */
export class XzPool {
  private readonly procs: XzProcess[] = [];
  private missing: Error | undefined;

  constructor(
    private readonly size: number,
    private readonly args: string[] = ['-dc', '-q', '-T1'],
    private readonly cmd = 'xz',
  ) {}

  /** False once starting xz failed (it is not installed): the caller decodes otherwise. */
  get available(): boolean {
    return this.missing === undefined;
  }

  /**
   * The decoded bytes of `member`, which xzDecodedSize found to decode to `size` bytes. `fallback`
   * takes the member over if no xz can be started after all.
   */
  decode(what: string, member: Buffer, size: number, fallback: () => Readable): Readable {
    const job: Job = {
      what,
      member,
      size,
      marker: randomBytes(MARKER_BYTES),
      out: undefined as unknown as Readable,
      attempts: 0,
      left: size,
      matched: 0,
      acc: [],
      accBytes: 0,
      dropped: false,
      settled: false,
      fallback,
    };
    job.out = new Readable({
      read: () => {
        if (job.instead !== undefined) job.instead.resume();
        else job.proc?.resume(job);
      },
      destroy: (err, cb) => {
        if (job.instead !== undefined) job.instead.destroy();
        else if (!job.settled) job.proc?.drop(job);
        cb(err);
      },
    });
    this.place(job);
    return job.out;
  }

  private place(job: Job): void {
    if (this.missing !== undefined) {
      this.instead(job);
      return;
    }
    job.proc = this.pick();
    job.proc.submit(job);
  }

  /** The job's output comes from its fallback decoder instead. */
  instead(job: Job): void {
    if (job.dropped || job.settled) return;
    const r = job.fallback();
    job.instead = r;
    r.on('data', (c: Buffer) => {
      if (!job.out.push(c)) r.pause();
    });
    r.on('end', () => job.out.push(null));
    r.on('error', (e) => job.out.destroy(e));
  }

  /** An idle process, else a new one while under `size`, else the least loaded. */
  private pick(): XzProcess {
    const live = this.procs.filter((p) => !p.closing && !p.dead);
    const idle = live.find((p) => p.jobs.length === 0);
    if (idle !== undefined) return idle;
    if (live.length < this.size) {
      const p = new XzProcess(this, this.cmd, this.args);
      this.procs.push(p);
      return p;
    }
    return live.reduce((a, b) => (b.pending < a.pending ? b : a));
  }

  fail(job: Job, e: Error): void {
    if (job.settled) return;
    job.settled = true;
    if (!job.dropped) job.out.destroy(e);
  }

  /**
   * Writes a job whose process died to another. Only deaths no member is blamed for count: each blamed
   * one removed a member from the queue, so those cannot repeat without end.
   */
  resubmit(job: Job, why: string, blameless: boolean): void {
    if (blameless && ++job.attempts >= MAX_ATTEMPTS) {
      this.fail(job, new DistillError('DECOMPRESS_FAILED', `${job.what}: xz stopped (${why}) ${job.attempts} times while decoding it`, { hint: 'try again' }));
      return;
    }
    if (job.dropped) return;
    job.left = job.size;
    job.matched = 0;
    job.acc = [];
    job.accBytes = 0;
    this.place(job);
  }

  unavailable(e: Error): void {
    this.missing ??= e;
  }

  removed(p: XzProcess): void {
    const i = this.procs.indexOf(p);
    if (i >= 0) this.procs.splice(i, 1);
  }
}

/** A tool's stderr as one line of a message (xz explains a memory limit on a second line); decompress.ts's own xz children too. */
export function stderrLine(stderr: string): string {
  return stderr.trim().replace(/\s*\n\s*/g, '; ');
}
