// Reading patch series, in the forms a kernel developer has them: a single patch, a quilt
// directory (its `series` file names the patches in order), a directory of `git
// format-patch` output (NNNN-*.patch, the cover letter skipped), or an mbox of several mails
// (`git format-patch --stdout`, `b4 am`), ordered by their [PATCH k/n]. Each patch is checked
// to be a real unified diff before anything is applied, so an empty or mangled patch is
// refused with its reason instead of failing obscurely inside `patch`.
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { cacheRoot } from '../common/cache.js';
import { badInput } from '../common/errors.js';
import { sha256 } from '../common/hash.js';

export interface PatchFile {
  /** Absolute path. */
  file: string;
  /** Where it was named: the series file and line, or the trial. */
  namedAt: { file: string; line?: number };
  sha256: string;
  /** Paths (relative to the tree, -p1 stripped) the patch creates, changes or deletes. */
  touches: string[];
  /** The mail's subject, without its [PATCH ...] prefix, when the patch is a mail. */
  subject?: string;
}

export interface Series {
  /** The series directory, the single patch file, or the mbox. */
  path: string;
  patches: PatchFile[];
  /** What was passed over, and why: a cover letter, a mail without a diff. */
  skipped: string[];
}

/** Parse a series file's text: one patch per line, '#' comments, optional -p1 ignored. */
export function parseSeriesText(text: string): { name: string; line: number }[] {
  const out: { name: string; line: number }[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) return;
    const [name, ...opts] = line.split(/\s+/);
    const bad = opts.filter((o) => o !== '-p1');
    if (bad.length) throw new Error(`line ${i + 1}: unsupported option ${bad.join(' ')} (patches are applied with -p1)`);
    out.push({ name: name!, line: i + 1 });
  });
  return out;
}

const stripP1 = (p: string) => p.replace(/^"|"$/g, '').split('\t')[0]!.replace(/^[^/]+\//, '');

/**
 * Check that text is a unified diff whose hunks add up, and list what it touches.
 * Throws a message naming the line at fault.
 */
export function inspectPatch(text: string, file: string): string[] {
  if (text.trim() === '') throw badInput(`patch ${file} is empty`, { where: { file }, hint: 'remove it from the series, or put the diff in it' });
  const lines = text.split('\n');
  const touched = new Set<string>();
  let hunks = 0;
  let i = 0;
  let oldPath: string | undefined;
  while (i < lines.length) {
    const l = lines[i]!;
    if (l.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
      oldPath = l.slice(4);
      const newPath = lines[i + 1]!.slice(4);
      const target = newPath.startsWith('/dev/null') ? oldPath : newPath;
      touched.add(stripP1(target));
      i += 2;
      continue;
    }
    const h = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@/.exec(l);
    if (h) {
      if (oldPath === undefined) throw badInput(`patch ${file} has a hunk before any ---/+++ file header`, { where: { file, line: i + 1 }, hint: 'the patch is mangled; regenerate it with diff -u or git format-patch' });
      let oldLeft = h[2] === undefined ? 1 : Number(h[2]);
      let newLeft = h[4] === undefined ? 1 : Number(h[4]);
      const start = i + 1;
      i++;
      while (oldLeft > 0 || newLeft > 0) {
        const b = lines[i];
        if (b === undefined) {
          throw badInput(`patch ${file}: the hunk at line ${start} ends early (${oldLeft} old and ${newLeft} new lines missing)`, { where: { file, line: start }, hint: 'the patch is truncated or its whitespace was mangled (a mailer may have joined or wrapped lines); restore it from the original' });
        }
        const c = b[0];
        if (c === ' ' || b === '') {
          oldLeft--;
          newLeft--;
        } else if (c === '-') oldLeft--;
        else if (c === '+') newLeft--;
        else if (c === '\\') {
          // "\ No newline at end of file"
        } else {
          throw badInput(`patch ${file}: line ${i + 1} inside the hunk starting at line ${start} is not a context, removed or added line`, { where: { file, line: i + 1 }, hint: 'the patch is mangled (lost leading spaces or wrapped lines); restore it from the original' });
        }
        if (oldLeft < 0 || newLeft < 0) throw badInput(`patch ${file}: the hunk at line ${start} has more lines than its header counts`, { where: { file, line: start }, hint: 'the patch was edited by hand or mangled; fix the @@ line counts or regenerate it' });
        i++;
      }
      hunks++;
      continue;
    }
    i++;
  }
  if (hunks === 0) {
    throw badInput(`patch ${file} contains no hunks: it is not a unified diff`, {
      where: { file },
      hint: lines.length < 3 ? 'its newlines may have been lost (the whole patch on one line); restore them' : 'regenerate it with diff -u or git format-patch',
    });
  }
  return [...touched];
}

async function readPatch(file: string, namedAt: PatchFile['namedAt']): Promise<PatchFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    throw badInput(`patch ${file} does not exist`, { where: namedAt, hint: 'fix the name in the series file, or add the patch' });
  }
  const subject = mailSubject(text);
  // A mail is the same patch in a format-patch file and in an mbox: hashed without its separator line.
  const [mail] = splitMbox(text);
  return { file, namedAt, sha256: sha256(mail?.text ?? text), touches: inspectPatch(text, file), ...(subject ? { subject: subject.title } : {}) };
}

/** A mail's Subject header (folded lines joined), its title without the [...] prefix, and its k/n. */
export function mailSubject(text: string): { title: string; position?: { k: number; n: number } } | undefined {
  const head = text.split(/\n\n/, 1)[0]!;
  const m = /^Subject:(.*(?:\n[ \t].*)*)/m.exec(head);
  if (!m) return undefined;
  const raw = m[1]!.replace(/\n[ \t]+/g, ' ').trim();
  const prefix = /^\[([^\]]*)\]\s*/.exec(raw);
  const kn = prefix ? /(\d+)\/(\d+)/.exec(prefix[1]!) : null;
  return { title: prefix ? raw.slice(prefix[0].length) : raw, ...(kn ? { position: { k: Number(kn[1]), n: Number(kn[2]) } } : {}) };
}

const hasDiff = (text: string) => /^\+\+\+ /m.test(text) && /^@@ /m.test(text);

/** An mbox's separator line: git's `From <sha> Mon Sep 17 00:00:00 2001`, b4's `From git@z ...`. */
const MBOX_FROM = /^From \S+ +\w{3} \w{3} +\d+ \d\d:\d\d:\d\d \d{4}$/;

/**
 * The mails of an mbox, with the line each starts on: each without its separator line and
 * with one newline at its end, as git format-patch writes a mail to a file of its own.
 */
export function splitMbox(text: string): { text: string; line: number }[] {
  const lines = text.split('\n');
  const starts = lines.flatMap((l, i) => (MBOX_FROM.test(l) ? [i] : []));
  return starts.map((start, j) => ({ text: `${lines.slice(start + 1, starts[j + 1] ?? lines.length).join('\n').replace(/\n*$/, '')}\n`, line: start + 1 }));
}

/**
 * An mbox's patches in [PATCH k/n] order, each kept as a file of its own in the cache (by
 * content) for `patch` to read; the cover letter (0/n) and mails without a diff are skipped.
 */
async function loadMbox(path: string, mails: { text: string; line: number }[]): Promise<Series> {
  const skipped: string[] = [];
  const found: { mail: (typeof mails)[number]; k: number; subject: string }[] = [];
  for (const [i, mail] of mails.entries()) {
    const subject = mailSubject(mail.text);
    const title = subject?.title ?? `the mail at line ${mail.line}`;
    if (subject?.position?.k === 0) {
      skipped.push(`the cover letter "${title}"`);
      continue;
    }
    if (!hasDiff(mail.text)) {
      skipped.push(`"${title}" (line ${mail.line}): no diff in it`);
      continue;
    }
    found.push({ mail, k: subject?.position?.k ?? i + 1, subject: title });
  }
  if (!found.length) throw badInput(`the mbox ${path} holds no patch (${mails.length} mail${mails.length === 1 ? '' : 's'}${skipped.length ? `: ${skipped.join('; ')}` : ''})`, { where: { file: path }, hint: 'give the mbox git format-patch --stdout or b4 am wrote for the series' });
  found.sort((a, b) => a.k - b.k);
  const dir = join(cacheRoot(), 'patches');
  await mkdir(dir, { recursive: true });
  const patches: PatchFile[] = [];
  for (const f of found) {
    const file = join(dir, `${sha256(f.mail.text).slice(0, 16)}.patch`);
    const tmp = `${file}.tmp-${process.pid}`;
    await writeFile(tmp, f.mail.text);
    await rename(tmp, file);
    const label = `${path} (mail at line ${f.mail.line}, "${f.subject}")`;
    patches.push({ file, namedAt: { file: path, line: f.mail.line }, sha256: sha256(f.mail.text), touches: inspectPatch(f.mail.text, label), subject: f.subject });
  }
  return { path, patches, skipped };
}

/** A directory of git format-patch output: NNNN-*.patch numbered 1..N without a gap; 0000 is the cover letter. */
async function loadFormatPatchDir(path: string, names: string[]): Promise<Series> {
  const numbered = names.flatMap((n) => {
    const m = /^(\d{4})-.*\.patch$/.exec(n);
    return m ? [{ name: n, k: Number(m[1]) }] : [];
  }).sort((a, b) => a.k - b.k);
  const skipped = numbered.filter((p) => p.k === 0).map((p) => `the cover letter ${p.name}`);
  const patches = numbered.filter((p) => p.k > 0);
  for (const [i, p] of patches.entries()) {
    if (p.k !== i + 1) {
      throw badInput(`the patch directory ${path} has a gap in its numbering: ${p.name} comes after ${i ? patches[i - 1]!.name : 'nothing'} (expected ${String(i + 1).padStart(4, '0')}-*.patch)`, {
        where: { file: join(path, p.name) },
        hint: 'give the whole series as git format-patch wrote it, or name the patches you want in a quilt series file',
      });
    }
  }
  const out: PatchFile[] = [];
  for (const p of patches) out.push(await readPatch(join(path, p.name), { file: join(path, p.name) }));
  return { path, patches: out, skipped };
}

/** Load a series: a patch file, an mbox of several mails, a quilt directory or a git format-patch directory. */
export async function loadSeries(path: string): Promise<Series> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw badInput(`patch series ${path} does not exist`, { hint: 'fix the path (a patch, an mbox, a quilt directory or a git format-patch directory)' });
  if (st.isFile()) {
    const mails = splitMbox(await readFile(path, 'utf8'));
    if (mails.length > 1) return loadMbox(path, mails);
    return { path, patches: [await readPatch(path, { file: path })], skipped: [] };
  }
  const names = await readdir(path);
  const seriesFile = join(path, 'series');
  if (!names.includes('series')) {
    if (names.some((n) => /^\d{4}-.*\.patch$/.test(n))) return loadFormatPatchDir(path, names);
    throw badInput(`patch directory ${path} has neither a series file nor git format-patch files (NNNN-*.patch)`, { where: { file: seriesFile }, hint: 'list its patches, one per line in order, in a file named series, or give the directory git format-patch -o wrote' });
  }
  const text = await readFile(seriesFile, 'utf8');
  let entries: { name: string; line: number }[];
  try {
    entries = parseSeriesText(text);
  } catch (err) {
    const m = /^line (\d+): (.*)$/.exec((err as Error).message);
    throw badInput(m ? m[2]! : (err as Error).message, { where: { file: seriesFile, ...(m ? { line: Number(m[1]) } : {}) } });
  }
  const patches: PatchFile[] = [];
  for (const e of entries) patches.push(await readPatch(join(path, e.name), { file: seriesFile, line: e.line }));
  return { path, patches, skipped: [] };
}

/** Every patch of these series in the order they apply, a patch given twice refused. */
export async function loadPatchList(paths: readonly string[]): Promise<{ series: Series[]; patches: PatchFile[] }> {
  const series: Series[] = [];
  for (const p of paths) series.push(await loadSeries(p));
  refuseRepeats(series);
  return { series, patches: series.flatMap((s) => s.patches) };
}

/** A patch in two places of a run's series is a mistake: refused, naming both. */
export function refuseRepeats(series: readonly Series[]): void {
  const seen = new Map<string, PatchFile>();
  for (const p of series.flatMap((s) => s.patches)) {
    const first = seen.get(p.sha256);
    if (first) throw badInput(`the patch ${patchLabel(p)} is given twice: it is the same as ${patchLabel(first)}`, { where: p.namedAt, hint: 'give each patch once' });
    seen.set(p.sha256, p);
  }
}

/** A patch as messages name it: its file, and its subject when it is a mail. */
export const patchLabel = (p: PatchFile): string => (p.subject ? `${basename(p.file)} ("${p.subject}")` : p.file);

