// A content-addressed cache: an entry is a directory named by the hash of its inputs.
// Entries are built under a temporary name and renamed into place, so a crash or an
// interrupt never leaves a half-written entry; a lock per entry makes concurrent runs
// wait for a build in progress instead of doing it twice.
import { mkdir, rename, rm, writeFile, readFile, access, constants, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { hostFailure } from './errors.js';

export function cacheRoot(): string {
  return process.env.KTRIAL_CACHE || join(homedir(), '.cache', 'ktrial');
}

const COMPLETE = '.ktrial-complete';

/**
 * mkdir -p, one level at a time: Node's recursive mkdir never returns for some paths that
 * cannot be created (under /proc, for one), so an unusable cache would hang the run.
 */
async function makeDirs(dir: string): Promise<void> {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = await stat(d).catch(() => undefined);
    if (st) break;
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  for (const d of missing) {
    try {
      await mkdir(d);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

export async function ensureWritableDir(dir: string, what: string): Promise<void> {
  try {
    await makeDirs(dir);
    await access(dir, constants.W_OK);
    const probe = join(dir, `.write-probe-${process.pid}`);
    await writeFile(probe, 'x');
    await rm(probe, { force: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    throw hostFailure(`${what} ${dir} is not writable (${code})`, {
      hint:
        code === 'ENOSPC'
          ? `free space on the file system holding ${dir}, or point KTRIAL_CACHE at another directory`
          : `fix its permissions, or point KTRIAL_CACHE at a writable directory`,
      cause: err,
    });
  }
}

export async function entryComplete(dir: string): Promise<boolean> {
  try {
    await access(join(dir, COMPLETE));
    return true;
  } catch {
    return false;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Take an exclusive lock (a directory holding the owner's pid). A lock whose owner is gone
 * is broken. Returns the release function.
 */
export async function lock(path: string, onWait?: (ownerPid: number) => void): Promise<() => Promise<void>> {
  let told = false;
  for (;;) {
    try {
      await mkdir(path);
      await writeFile(join(path, 'pid'), String(process.pid));
      return async () => {
        await rm(path, { recursive: true, force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    let owner = NaN;
    try {
      owner = Number((await readFile(join(path, 'pid'), 'utf8')).trim());
    } catch {
      // The owner has made the directory but not yet written its pid; give it a moment.
      const st = await stat(path).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > 10_000) owner = -1;
    }
    if (owner === -1 || (Number.isFinite(owner) && !pidAlive(owner))) {
      await rm(path, { recursive: true, force: true });
      continue;
    }
    if (!told && onWait && Number.isFinite(owner)) {
      onWait(owner);
      told = true;
    }
    await sleep(500);
  }
}

export interface CacheEntry {
  dir: string;
  hit: boolean;
}

/**
 * Return the cache entry <root>/<kind>/<key>, building it with `build(tmpDir)` if absent.
 * `build` writes into tmpDir only; on success tmpDir becomes the entry atomically.
 */
export async function cached(
  kind: string,
  key: string,
  build: (tmpDir: string) => Promise<void>,
  opts: { onWait?: (ownerPid: number) => void } = {},
): Promise<CacheEntry> {
  const base = join(cacheRoot(), kind);
  const dir = join(base, key);
  if (await entryComplete(dir)) return { dir, hit: true };
  await ensureWritableDir(base, 'the cache directory');
  const release = await lock(`${dir}.lock`, opts.onWait);
  try {
    if (await entryComplete(dir)) return { dir, hit: true };
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await rm(dir, { recursive: true, force: true });
    await mkdir(tmp, { recursive: true });
    try {
      await build(tmp);
      await writeFile(join(tmp, COMPLETE), new Date().toISOString());
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      throw err;
    }
    return { dir, hit: false };
  } finally {
    await release();
  }
}
