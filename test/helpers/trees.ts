import { stat } from 'node:fs/promises';
import { knownSpec, sourceEnvVar } from '../../harness/source/source.js';

/**
 * Whether ktrial can find a source for a named tree without network: the environment
 * variable, or the cache's record of an earlier run. Otherwise the reason, for a SKIP line.
 */
export async function sourceAvailable(name: string): Promise<{ ok: true } | { ok: false; skip: string }> {
  if (process.env[sourceEnvVar(name)]) return { ok: true };
  if (await knownSpec(name)) return { ok: true };
  return {
    ok: false,
    skip: `no ${name} tree known to ktrial: set ${sourceEnvVar(name)}=/path/to/${name} (a tree, a tarball, or REPO@REF), or run \`npx ktrial build <trial> --source ...\` once`,
  };
}

/** True when the named source is known; otherwise print the SKIP line and return false. */
export async function needSource(t: { comment(...args: unknown[]): void }, name: string): Promise<boolean> {
  const have = await sourceAvailable(name);
  if (!have.ok) t.comment(`SKIP: ${have.skip}`);
  return have.ok;
}

/** A local directory holding the named tree (to copy and edit), or the reason there is none. */
export async function localTree(name: string): Promise<{ dir: string } | { skip: string }> {
  const env = process.env[sourceEnvVar(name)];
  const known = await knownSpec(name);
  const dir = env ?? (known?.kind === 'path' ? known.path : undefined);
  if (dir && (await stat(dir).catch(() => undefined))?.isDirectory()) return { dir };
  return { skip: `needs a ${name} tree (a directory): set ${sourceEnvVar(name)}=/path/to/${name}` };
}
