import { constants, createWriteStream, openSync, realpathSync, type WriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { badInput } from './errors.js';

/** The ktrial checkout: compiled code runs from dist/harness/common/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const repoPath = (...p: string[]) => join(REPO_ROOT, ...p);

/** Whether a source location is a URL (scheme://...) rather than a local path. */
export const isUrl = (location: string): boolean => /^[a-z]+:\/\//.test(location);

/** A URL as it is; a local path made absolute against dir. */
export const urlOrPath = (location: string, dir = process.cwd()): string => (isUrl(location) ? location : resolve(dir, location));

/**
 * Opening for writing, never through a symbolic link (O_NOFOLLOW): what ktrial writes into
 * a run's output directory lands in that directory, whatever was left at the name.
 */
export const OWN_FILE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW;
const OWN_APPEND_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND | constants.O_NOFOLLOW;

/** The error for a write refused because the name is a symbolic link; other errors as they are. */
export function ownFileError(path: string, err: unknown): unknown {
  if ((err as NodeJS.ErrnoException).code !== 'ELOOP') return err;
  return badInput(`${path} is a symbolic link: ktrial writes its outputs as files of its own and does not follow links out of the output directory`, { hint: `remove ${path}, or give the run another --out directory` });
}

/** Write (or append to) a file of ktrial's own: refused, by name, when the name is a symbolic link. */
export async function writeOwnFile(path: string, data: string | Uint8Array, how: 'write' | 'append' = 'write'): Promise<void> {
  const fh = await open(path, how === 'write' ? OWN_FILE_FLAGS : OWN_APPEND_FLAGS, 0o644).catch((err: unknown) => {
    throw ownFileError(path, err);
  });
  try {
    await fh.writeFile(data);
  } finally {
    await fh.close();
  }
}

/** The same for a stream that writes a file as data arrives (a console log, a saved state). */
export function ownFileStream(path: string): WriteStream {
  let fd: number;
  try {
    fd = openSync(path, OWN_FILE_FLAGS, 0o644);
  } catch (err) {
    throw ownFileError(path, err);
  }
  return createWriteStream(path, { fd });
}

/** Why a guest path (a suite file's dest, --copy's DEST) is refused, if it is. */
export function guestPathProblem(p: string): string | undefined {
  if (!p.startsWith('/')) return 'it must be absolute';
  if (/[\x00-\x1f\x7f]/.test(p)) return 'it holds a control character';
  if (p.split('/').some((part) => part === '..' || part === '.')) return 'it holds a . or .. component';
  if (p.endsWith('/')) return 'it names a directory, not a file';
  return undefined;
}

/**
 * Why a host file a suite names (files: src) is refused, if it is: it must be a relative
 * path that stays, symbolic links followed, under the suite's directory.
 */
export function suiteFileProblem(suiteDir: string, src: string): string | undefined {
  if (isAbsolute(src)) return 'it is an absolute path';
  const path = resolve(suiteDir, src);
  if (!inside(suiteDir, path)) return `it leaves the suite's directory ${suiteDir}`;
  let real: string;
  try {
    real = realpathSync(path);
  } catch {
    return undefined;
  }
  if (!inside(realpathSync(suiteDir), real)) return `it is a symbolic link to ${real}, outside the suite's directory`;
  return undefined;
}

const inside = (dir: string, path: string) => {
  const r = relative(dir, path);
  return r !== '' && !r.startsWith('..') && !isAbsolute(r);
};
