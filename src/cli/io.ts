// What a CLI command may touch of the outside world, passed in so that main() is testable.
import { homedir } from 'node:os';
import { join } from 'node:path';

export interface CliIo {
  stdout: { write(s: string): unknown; isTTY?: boolean };
  stderr: { write(s: string): unknown; isTTY?: boolean; columns?: number };
  env: Record<string, string | undefined>;
  /** For --password-stdin. */
  stdin?: AsyncIterable<unknown>;
}

export function defaultCacheDir(env: CliIo['env']): string {
  const xdg = env['XDG_CACHE_HOME'];
  return join(xdg && xdg !== '' ? xdg : join(env['HOME'] ?? homedir(), '.cache'), 'distill');
}

// Characters a terminal acts on instead of showing: C0 controls other than \n and \t (ESC starts
// cursor, colour, title and hyperlink sequences; a lone \r overwrites the line), DEL, the C1 controls
// (U+009B is an 8-bit CSI), and the Unicode bidi and line-separator controls that reorder or break
// what is displayed ("Trojan Source", CVE-2021-42574). Names, versions, labels, tags and error
// details that reach the terminal come from definitions, .debs, image layers and registries — input
// an attacker controls — so every write is passed through this. Each is shown as a JSON-style \uXXXX
// escape, which keeps --json output valid JSON that parses back to the same string.
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function terminalSafe(s: string): string {
  return s.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * A field of a human-readable line (a ref, package or tag name read from a layout, an archive, a layer
 * or a registry): also its newlines and tabs escaped, so that it cannot start a line of its own in a
 * table — terminalSafe keeps those, since distill's own output is made of lines.
 */
export function field(s: string): string {
  return terminalSafe(s).replace(/[\n\t]/g, (c) => (c === '\n' ? '\\u000a' : '\\u0009'));
}

/** The one control sequence distill writes itself: progress lines erase the line they redraw. */
const ERASE_LINE = '\r\x1b[K';
/** The unfiltered write of a stream terminalIo wrapped; only eraseLine uses it. */
const RAW_WRITE = Symbol('distill.rawWrite');

type Stream = { write(s: string): unknown; isTTY?: boolean; columns?: number };

/**
 * Erase the line the cursor is on (a TTY's progress line). It is its own write, never a prefix the
 * filter lets through: a string that merely starts with "\r\x1b[K" (an OCI archive's ref name at the
 * start of an inspect line, say) is escaped like any other.
 */
export function eraseLine(w: Stream): void {
  const raw = (w as { [RAW_WRITE]?: (s: string) => unknown })[RAW_WRITE];
  if (raw !== undefined) raw(ERASE_LINE);
  else w.write(ERASE_LINE);
}

function safeStream<T extends Stream>(w: T): T {
  return {
    write: (s: string) => w.write(terminalSafe(s)),
    [RAW_WRITE]: (s: string) => w.write(s),
    get isTTY() {
      return w.isTTY;
    },
    get columns() {
      return w.columns;
    },
  } as unknown as T;
}

/** `io` with both output streams passed through terminalSafe. */
export function terminalIo(io: CliIo): CliIo {
  return { ...io, stdout: safeStream(io.stdout), stderr: safeStream(io.stderr) };
}
