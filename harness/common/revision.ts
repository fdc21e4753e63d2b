// Which ktrial produced a result: the checkout's commit, marked when tracked files differ
// from it, or the package version outside a git checkout. A re-run needs the same ktrial
// as much as the same kernel inputs.
import { readFile } from 'node:fs/promises';
import { run } from './proc.js';
import { REPO_ROOT, repoPath } from './paths.js';

export async function ktrialRevision(): Promise<string> {
  const head = await run('git', ['-C', REPO_ROOT, 'rev-parse', '--short=12', 'HEAD']).catch(() => undefined);
  if (head?.exitCode === 0) {
    const dirty = await run('git', ['-C', REPO_ROOT, 'status', '--porcelain', '--untracked-files=no']);
    return `${head.stdout.trim()}${dirty.stdout.trim() ? ' with uncommitted changes' : ''}`;
  }
  const pkg = JSON.parse(await readFile(repoPath('package.json'), 'utf8')) as { version: string };
  return `${pkg.version} (not a git checkout)`;
}
