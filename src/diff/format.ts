// Renderings of a DiffResult: plain text for a terminal, Markdown for a pull-request body. Package
// names, versions and changelog text come from locks and .debs (attacker-controlled): in Markdown they
// are escaped, and changelog text goes into fenced blocks whose fence is longer than any backtick run
// inside. A pull-request body is capped (GitHub refuses more than 65536 characters): past the cap,
// changelog sections are left out and the body says so.
import type { ArchDiff, DiffResult, DiffVersionChange } from './diff.js';

const MARKDOWN_MAX = 60000;

function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

export function summaryLine(r: DiffResult): string {
  const s = r.summary;
  if (!s.changed) return 'no package changes';
  const parts = [`${s.upgraded} upgraded`, `${s.added} added`, `${s.removed} removed`, `${s.downgraded} downgraded`];
  return `${parts.join(', ')}${s.cves.length > 0 ? `; the upgrades' changelogs name ${plural(s.cves.length, 'CVE')}` : ''}`;
}

/** One printable line of untrusted text: control characters shown as escapes. */
function clean(s: string): string {
  // eslint-disable-next-line no-control-regex
  return s.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function changeText(u: DiffVersionChange): string {
  const src = u.oldSource ? `${u.oldSource} → ${u.source}` : u.source;
  return `${u.name} ${u.oldVersion} → ${u.newVersion} (${src})${u.debugOnly ? ' [debug]' : ''}`;
}

export function formatDiffText(r: DiffResult, opts: { changelogs?: boolean } = {}): string {
  const out: string[] = [];
  for (const img of r.images) {
    if (img.status === 'unchanged') {
      out.push(`${img.image}: unchanged`);
      continue;
    }
    out.push(`${img.image}${img.status === 'added' ? ' (new image)' : img.status === 'removed' ? ' (image removed)' : ''}:`);
    for (const a of img.architectures) {
      if (a.added.length + a.removed.length + a.upgraded.length + a.downgraded.length === 0) {
        out.push(`  ${a.arch}: unchanged`);
        continue;
      }
      out.push(`  ${a.arch}:`);
      for (const u of a.upgraded) {
        const cl = u.changelog;
        const cves = cl && cl.cves.length > 0 ? `: ${plural(cl.cves.length, 'CVE')}` : '';
        out.push(clean(`    upgraded   ${changeText(u)}${cves}`));
        if (cl && cl.status !== 'ok' && cl.status !== 'skipped') {
          out.push(clean(`               changelog ${cl.status}${cl.error ? `: ${cl.error.message} [${cl.error.code}]` : cl.warnings[0] ? `: ${cl.warnings[0]}` : ''}`));
        }
        if (opts.changelogs !== false && cl) {
          for (const e of cl.entries) {
            out.push(clean(`               ${e.version} (${e.distributions.join(' ')}${e.urgency ? `; urgency=${e.urgency}` : ''})${e.cves.length > 0 ? `: ${e.cves.join(' ')}` : ''}`));
          }
        }
      }
      for (const u of a.downgraded) out.push(clean(`    downgraded ${changeText(u)}`));
      for (const p of a.added) out.push(clean(`    added      ${p.name} ${p.version} (${p.source})${p.debugOnly ? ' [debug]' : ''}`));
      for (const p of a.removed) out.push(clean(`    removed    ${p.name} ${p.version} (${p.source})${p.debugOnly ? ' [debug]' : ''}`));
    }
  }
  out.push(`summary: ${summaryLine(r)}`);
  if (r.summary.cves.length > 0) out.push(`CVEs: ${r.summary.cves.join(' ')}`);
  for (const w of r.warnings) out.push(clean(`warning: ${w}`));
  return out.join('\n') + '\n';
}

/** Markdown inline text: everything that could start markup is escaped. */
function md(s: string): string {
  return clean(s).replace(/[\\`*_{}[\]()<>#+!|~&]/g, (c) => `\\${c}`);
}

function fence(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const f = '`'.repeat(longest + 1);
  return `${f}\n${text}\n${f}`;
}

function changedArches(a: ArchDiff): boolean {
  return a.added.length + a.removed.length + a.upgraded.length + a.downgraded.length > 0;
}

export function formatDiffMarkdown(r: DiffResult): string {
  const head: string[] = [];
  const s = r.summary;
  head.push('## Package changes', '');
  head.push(s.changed ? `**${s.upgraded}** upgraded · **${s.added}** added · **${s.removed}** removed · **${s.downgraded}** downgraded` : 'No package changes.');
  if (s.cves.length > 0) head.push('', `The upgrades' Debian changelogs name **${plural(s.cves.length, 'CVE')}**: ${s.cves.map(md).join(', ')}`);
  head.push('');
  for (const img of r.images) {
    if (img.status === 'unchanged') continue;
    head.push(`### ${md(img.image)}${img.status === 'added' ? ' (new image)' : img.status === 'removed' ? ' (image removed)' : ''}`, '');
    head.push('| arch | package | change | old | new | source | CVEs |', '|---|---|---|---|---|---|---|');
    for (const a of img.architectures.filter(changedArches)) {
      const row = (pkg: string, change: string, old: string, nw: string, src: string, cves: string): string =>
        `| ${md(a.arch)} | ${md(pkg)} | ${change} | ${old ? md(old) : ''} | ${nw ? md(nw) : ''} | ${md(src)} | ${cves} |`;
      for (const u of a.upgraded) head.push(row(u.name, 'upgraded', u.oldVersion, u.newVersion, u.source, cveCell(u)));
      for (const u of a.downgraded) head.push(row(u.name, '**downgraded**', u.oldVersion, u.newVersion, u.source, ''));
      for (const p of a.added) head.push(row(p.name, 'added', '', p.version, p.source, ''));
      for (const p of a.removed) head.push(row(p.name, 'removed', p.version, '', p.source, ''));
    }
    head.push('');
  }
  // Changelogs once per source upgrade (the same upgrade appears in every image and architecture).
  const logs = new Map<string, { u: DiffVersionChange; binaries: Set<string> }>();
  for (const img of r.images) {
    for (const a of img.architectures) {
      for (const u of a.upgraded) {
        if (!u.changelog || u.changelog.entries.length === 0) continue;
        const key = `${u.source}\0${u.oldSourceVersion}\0${u.newSourceVersion}\0${u.changelog.entries.map((e) => e.version).join(',')}`;
        const l = logs.get(key) ?? { u, binaries: new Set<string>() };
        l.binaries.add(u.name);
        logs.set(key, l);
      }
    }
  }
  const warnings = r.warnings.length > 0 ? ['<details><summary>Warnings</summary>', '', ...r.warnings.map((w) => `- ${md(w)}`), '', '</details>', ''] : [];
  // Changelog sections go in while they fit; the rest are named as left out.
  const budget = MARKDOWN_MAX - 400 - [...head, ...warnings].join('\n').length;
  const tail: string[] = [];
  let used = 0;
  let left = 0;
  for (const { u, binaries } of logs.values()) {
    const cl = u.changelog!;
    const text = cl.entries
      .map((e) => `${e.source} (${e.version}) ${e.distributions.join(' ')};${e.urgency ? ` urgency=${e.urgency}` : ''}\n\n${e.changes.split('\n').map((l) => (l === '' ? '' : `  ${l}`)).join('\n')}\n\n -- ${e.maintainer ?? ''}  ${e.date ?? ''}`)
      .join('\n\n');
    const cves = cl.cves.length > 0 ? `; ${plural(cl.cves.length, 'CVE')}` : '';
    const section = [
      `<details><summary>${md(u.source)} ${md(u.oldSourceVersion)} → ${md(u.newSourceVersion)} (${[...binaries].sort().map(md).join(', ')}${cves})${cl.status === 'partial' ? ' (partial)' : ''}</summary>`,
      '',
      fence(clean(text)),
      '',
      '</details>',
      '',
    ].join('\n');
    if (used + section.length > budget) {
      left++;
      continue;
    }
    used += section.length + 1;
    tail.push(section);
  }
  if (tail.length > 0 || left > 0) tail.unshift('### Changelogs', '');
  if (left > 0) tail.push(`_${plural(left, 'changelog')} left out to keep this body under ${MARKDOWN_MAX} characters; \`distill diff --json\` has them all._`, '');
  let body = [...head, ...tail, ...warnings].join('\n');
  if (body.length > MARKDOWN_MAX) body = `${body.slice(0, MARKDOWN_MAX - 200)}\n\n_(cut at ${MARKDOWN_MAX} characters)_\n`;
  return body;
}

function cveCell(u: DiffVersionChange): string {
  const n = u.changelog?.cves.length ?? 0;
  if (n === 0) return changelogNote(u);
  return n <= 3 ? u.changelog!.cves.map(md).join(', ') : plural(n, 'CVE');
}

function changelogNote(u: DiffVersionChange): string {
  const cl = u.changelog;
  if (!cl || cl.status === 'ok' || cl.status === 'skipped') return '';
  return `_changelog ${cl.status}_`;
}
