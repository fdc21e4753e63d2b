// Which ktrial produced a result: the checkout's commit, marked when tracked files differ
// from it, or the package version outside a git checkout. A re-run needs the same ktrial
// as much as the same kernel inputs.
import { readFile } from 'node:fs/promises';
import { run } from './proc.js';
import { REPO_ROOT, repoPath } from './paths.js';

/** The checkout's commit, "with uncommitted changes" when tracked files differ; undefined outside a git checkout. */
export async function gitRevision(): Promise<string | undefined> {
  const head = await run('git', ['-C', REPO_ROOT, 'rev-parse', '--short=12', 'HEAD']).catch(() => undefined);
  if (head?.exitCode !== 0) return undefined;
  const dirty = await run('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no']);
  return `${head.stdout.trim()}${dirty.stdout.trim() ? ' with uncommitted changes' : ''}`;
}

export async function packageVersion(): Promise<string> {
  return (JSON.parse(await readFile(repoPath('package.json'), 'utf8')) as { version: string }).version;
}

export async function ktrialRevision(): Promise<string> {
  return (await gitRevision()) ?? `${await packageVersion()} (not a git checkout)`;
}
