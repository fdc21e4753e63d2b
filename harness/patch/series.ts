// Reading patch series: a quilt `series` file names patches in order; each patch is checked
// to be a real unified diff before anything is applied, so an empty or mangled patch is
// refused with its reason instead of failing obscurely inside `patch`.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
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
}

export interface Series {
  /** The series directory, or the single patch file. */
  path: string;
  patches: PatchFile[];
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
  return { file, namedAt, sha256: sha256(text), touches: inspectPatch(text, file) };
}

/** Load a series directory (with its `series` file) or a single patch file. */
export async function loadSeries(path: string): Promise<Series> {
  const st = await stat(path).catch(() => undefined);
  if (!st) throw badInput(`patch series ${path} does not exist`, { hint: 'fix the path in the trial' });
  if (st.isFile()) {
    return { path, patches: [await readPatch(path, { file: path })] };
  }
  const seriesFile = join(path, 'series');
  let text: string;
  try {
    text = await readFile(seriesFile, 'utf8');
  } catch {
    throw badInput(`patch directory ${path} has no series file`, { where: { file: seriesFile }, hint: 'list its patches, one per line in order, in a file named series' });
  }
  let entries: { name: string; line: number }[];
  try {
    entries = parseSeriesText(text);
  } catch (err) {
    const m = /^line (\d+): (.*)$/.exec((err as Error).message);
    throw badInput(m ? m[2]! : (err as Error).message, { where: { file: seriesFile, ...(m ? { line: Number(m[1]) } : {}) } });
  }
  const patches: PatchFile[] = [];
  for (const e of entries) patches.push(await readPatch(join(path, e.name), { file: seriesFile, line: e.line }));
  return { path, patches };
}

