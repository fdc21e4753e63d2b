// Stage 2: pristine tree + patch series -> a patched work tree ready to configure and build.
// The work tree is kept between runs (keyed by source and compiler) so builds are
// incremental. Patches are applied to a staging copy of just the files they touch; only
// files whose content changed are written into the work tree, so make rebuilds only what
// an edit to the series really changed. The work tree is untouched if any patch fails.
// A local tree keeps one work tree under its path: the files that changed in it since the
// last run (by size and mtime) are copied in, and files removed from it are removed, so an
// edit to the tree, or a git checkout in it, rebuilds incrementally too.
import { mkdir, readFile, rename, rm, writeFile, copyFile, unlink, stat } from 'node:fs/promises';
import { dirname, join, relative, resolve } from 'node:path';
import { cached, cacheRoot, lock } from '../common/cache.js';
import type { StageContext } from '../common/context.js';
import { badInput } from '../common/errors.js';
import { hashValue, shortHash } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import { run, runOk } from '../common/proc.js';
import type { SourceTree, TreeListing } from '../source/source.js';
import type { PatchFile, Series } from './series.js';

export interface AppliedPatch {
  series: string;
  patch: string;
  sha256: string;
  /** What `patch` said, e.g. offsets. */
  notes: string[];
}

export interface PatchedTree {
  dir: string;
  applied: AppliedPatch[];
  /** Files the series changed relative to the pristine tree. */
  touched: string[];
  /** Release the work tree for other runs. */
  release(): Promise<void>;
}

interface WorkTreeState {
  touched: string[];
}

/** A work tree's record of what the last series touched; rewritten at every use. */
export const WORKTREE_STATE = '.ktrial-worktree.json';
/** The listing of the local tree the work tree was last brought up to date with. */
const LISTING = '.ktrial-worktree-listing.json';

async function writeListing(dir: string, listing: TreeListing): Promise<void> {
  await writeFile(join(dir, `${LISTING}.tmp`), JSON.stringify(Object.fromEntries(listing)));
  await rename(join(dir, `${LISTING}.tmp`), join(dir, LISTING));
}

/** Bring a local tree's work tree up to date: copy what changed, remove what was removed. */
async function syncFromTree(src: SourceTree, listing: TreeListing, dir: string, ctx: StageContext): Promise<void> {
  const before = new Map(Object.entries(JSON.parse(await readFile(join(dir, LISTING), 'utf8').catch(() => '{}')) as Record<string, string>));
  let copied = 0;
  let removed = 0;
  for (const [rel, facts] of listing) {
    if (before.get(rel) === facts) continue;
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    // A fresh mtime: make must see the file as newer than what was built from it.
    await copyFile(join(src.dir, rel), join(dir, rel));
    copied++;
  }
  for (const rel of before.keys()) {
    if (listing.has(rel)) continue;
    await unlink(join(dir, rel)).catch(() => undefined);
    removed++;
  }
  await writeListing(dir, listing);
  if (copied || removed) ctx.progress.info(`work tree: ${copied} file(s) changed in ${src.dir} copied in, ${removed} removed`);
}

async function exists(p: string): Promise<boolean> {
  return (await stat(p).catch(() => undefined)) !== undefined;
}

/** Parse `patch` output into the failing file and hunk. */
export function describePatchFailure(output: string): { file?: string; hunks: string[]; summary: string } {
  let file: string | undefined;
  let failedFile: string | undefined;
  let missing = false;
  const hunks: string[] = [];
  for (const line of output.split('\n')) {
    const f = /^(?:patching|checking) file (.+)$/.exec(line);
    if (f) file = f[1]!.replace(/^'|'$/g, '');
    const h = /^Hunk #(\d+) FAILED at (\d+)/.exec(line);
    if (h) {
      failedFile ??= file;
      hunks.push(`hunk #${h[1]} (at line ${h[2]}) of ${file}`);
    }
    // patch names a missing file only in the diff header it quotes ("|+++ b/path").
    if (/can't find file to patch/.test(line)) missing = true;
    const quoted = /^\|\+\+\+ (\S+)/.exec(line);
    if (missing && quoted) {
      const path = quoted[1]!.replace(/^[^/]+\//, '');
      failedFile ??= path;
      hunks.push(`${path} does not exist in the tree`);
      missing = false;
    }
    if (/Reversed \(or previously applied\) patch detected/.test(line)) {
      failedFile ??= file;
      hunks.push(`${file}: the change is already there (a reversed or previously applied patch)`);
    }
  }
  const summary = hunks.length ? hunks.join('; ') : output.trim().split('\n').slice(-3).join(' ');
  return { ...(failedFile ? { file: failedFile } : {}), hunks, summary };
}

async function applyOne(staging: string, p: PatchFile, series: string, ctx: StageContext): Promise<string[]> {
  const args = ['-p1', '-N', '-F0', '--no-backup-if-mismatch', '-d', staging, '-i', p.file];
  const dry = await run('patch', ['--dry-run', ...args], { signal: ctx.signal, env: { LC_ALL: 'C' } });
  if (dry.exitCode !== 0) {
    const d = describePatchFailure(dry.all);
    throw badInput(`patch ${relative(process.cwd(), p.file)}${p.subject ? ` ("${p.subject}")` : ''} (series ${relative(process.cwd(), series)}) does not apply: ${d.summary}`, {
      where: p.namedAt,
      excerpt: dry.all.trim().split('\n').slice(0, 20).join('\n'),
      hint: 'rebase the patch onto this tree (the hunks above did not match), or check that the series order and the --source are the ones it was written for; nothing was built and the work tree is unchanged',
    });
  }
  const r = await run('patch', args, { signal: ctx.signal, env: { LC_ALL: 'C' } });
  if (r.exitCode !== 0) throw badInput(`patch ${p.file} failed after its dry run passed`, { excerpt: r.all, where: p.namedAt });
  return r.all.split('\n').filter((l) => /offset|fuzz/i.test(l));
}

export async function applySeries(src: SourceTree, series: Series[], workKey: Record<string, string>, ctx: StageContext): Promise<PatchedTree> {
  await requireTools(['patch'], 'applying patches');
  // A local tree is the same tree after an edit; every other source is immutable.
  const treeIdentity = src.listing ? `tree-at:${resolve(src.dir)}` : src.id;
  const key = shortHash(hashValue({ src: treeIdentity, ...workKey }));
  const entry = await cached('worktrees', key, async (tmp) => {
    ctx.progress.info(`creating a work tree from ${src.dir}`);
    await runOk('cp', ['-a', '--reflink=auto', `${src.dir}/.`, tmp], { signal: ctx.signal }, 'copying the source into a work tree');
    await writeFile(join(tmp, WORKTREE_STATE), JSON.stringify({ touched: [] } satisfies WorkTreeState));
    if (src.listing) await writeListing(tmp, src.listing);
  });
  const dir = entry.dir;
  const release = await lock(join(cacheRoot(), 'worktrees', `${key}.inuse`), (pid) => ctx.progress.info(`waiting for process ${pid}, which is using the same work tree`));
  try {
    const state = JSON.parse(await readFile(join(dir, WORKTREE_STATE), 'utf8')) as WorkTreeState;
    const all = series.flatMap((s) => s.patches.map((p) => ({ s, p })));
    const touched = new Set([...state.touched, ...all.flatMap(({ p }) => p.touches)]);

    // Stage the pristine version of every file either the old or the new series touches.
    const staging = join(cacheRoot(), 'worktrees', `${key}.staging-${process.pid}`);
    await rm(staging, { recursive: true, force: true });
    await mkdir(staging, { recursive: true });
    try {
      for (const f of touched) {
        const from = join(src.dir, f);
        if (await exists(from)) {
          await mkdir(dirname(join(staging, f)), { recursive: true });
          await copyFile(from, join(staging, f));
        }
      }
      const applied: AppliedPatch[] = [];
      for (const { s, p } of all) {
        const notes = await applyOne(staging, p, s.path, ctx);
        applied.push({ series: s.path, patch: p.file, sha256: p.sha256, notes });
      }
      // Only now that every patch applied: a failing series leaves the work tree as it was.
      if (src.listing) await syncFromTree(src, src.listing, dir, ctx);
      // Bring the work tree to the staged content, writing only what differs.
      let written = 0;
      for (const f of touched) {
        const want = await readFile(join(staging, f)).catch(() => undefined);
        const have = await readFile(join(dir, f)).catch(() => undefined);
        if (want && have && want.equals(have)) continue;
        if (!want && !have) continue;
        if (want) {
          await mkdir(dirname(join(dir, f)), { recursive: true });
          await writeFile(join(dir, f), want);
        } else await unlink(join(dir, f));
        written++;
      }
      const changed = all.flatMap(({ p }) => p.touches);
      await writeFile(join(dir, WORKTREE_STATE), JSON.stringify({ touched: [...new Set(changed)] } satisfies WorkTreeState));
      ctx.progress.info(`patches: ${applied.length} applied, ${written} file(s) of the work tree changed`);
      return { dir, applied, touched: [...new Set(changed)], release };
    } finally {
      await rm(staging, { recursive: true, force: true });
    }
  } catch (err) {
    await release();
    throw err;
  }
}
