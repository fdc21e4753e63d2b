// Which kernel sources the tests can use here. A trial's source is usable when ktrial can
// find it the way a user's run would: KTRIAL_SOURCE_<NAME>, the cache's record of an
// earlier run, a Debian package, or the trial's pinned tarball when it is already
// downloaded or its URL answers. Otherwise the tests that need it are skipped with tap's own
// skip, whose reason says what to supply.
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { cacheRoot } from '../../harness/common/cache.js';
import { isUrl, repoPath } from '../../harness/common/paths.js';
import { Progress } from '../../harness/common/progress.js';
import { knownSpec, resolveSource, sourceEnvVar } from '../../harness/source/source.js';
import { loadTrial, type SourceSpec } from '../../harness/trial/trial.js';

const PROBE_TIMEOUT_MS = 10_000;

async function trialSource(trialName: string): Promise<SourceSpec> {
  return (await loadTrial(repoPath('configs', 'trials', `${trialName}.yaml`))).source;
}

/** Whether a URL answers (a HEAD request), or why not. */
async function reachable(url: string): Promise<true | string> {
  try {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
    return res.ok ? true : `HTTP ${res.status}`;
  } catch (err) {
    const cause = (err as Error).cause as Error | undefined;
    return cause?.message ?? (err as Error).message;
  }
}

async function findSkip(trialName: string): Promise<string | false> {
  const spec = await trialSource(trialName);
  if (process.env[sourceEnvVar(spec.name)] || (await knownSpec(spec.name))) return false;
  const how = `set ${sourceEnvVar(spec.name)}=/path/to/${spec.name} (a tree, a tarball, or REPO@REF)`;
  switch (spec.kind) {
    case 'debian':
    case 'git':
      return false;
    case 'path':
      return (await stat(spec.path).catch(() => undefined)) ? false : `no ${spec.name} tree at ${spec.path}: ${how}`;
    case 'tarball': {
      if (!isUrl(spec.tarball)) return (await stat(spec.tarball).catch(() => undefined)) ? false : `no ${spec.tarball}: ${how}`;
      if (await stat(join(cacheRoot(), 'downloads', basename(new URL(spec.tarball).pathname))).catch(() => undefined)) return false;
      const answer = await reachable(spec.tarball);
      return answer === true ? false : `needs a ${spec.name} source: ${how}; the trial's pinned tarball ${spec.tarball} cannot be downloaded here (${answer})`;
    }
  }
}

const skips = new Map<string, Promise<string | false>>();

/**
 * false when the trial's kernel source can be had here; otherwise the reason, for tap's
 * `skip` option: `t.test(name, { skip: await sourceSkip('smoke-2.6.20') }, ...)`.
 */
export function sourceSkip(trialName: string): Promise<string | false> {
  let s = skips.get(trialName);
  if (!s) skips.set(trialName, (s = findSkip(trialName)));
  return s;
}

/**
 * A directory holding the trial's pristine source tree, to copy and edit: the directory
 * named by KTRIAL_SOURCE_<NAME> or recorded by an earlier run, or else the tree ktrial
 * unpacks from the trial's own source (downloading its pinned tarball if need be). `skip`
 * is the reason when there is none (and `dir` is then empty).
 */
export async function localTree(trialName: string): Promise<{ dir: string; skip: string | false }> {
  const skip = await sourceSkip(trialName);
  if (skip) return { dir: '', skip };
  const spec = await trialSource(trialName);
  const named = process.env[sourceEnvVar(spec.name)];
  const known = await knownSpec(spec.name);
  const dir = named ?? (known?.kind === 'path' ? known.path : undefined);
  if (dir && (await stat(dir).catch(() => undefined))?.isDirectory()) return { dir, skip: false };
  const ctx = { progress: new Progress(() => {}), signal: new AbortController().signal };
  const tree = await resolveSource(spec, undefined, ctx);
  return { dir: tree.dir, skip: false };
}
