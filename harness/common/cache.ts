// A content-addressed cache: an entry is a directory named by the hash of its inputs.
// Entries are built under a temporary name and renamed into place, so a crash or an
// interrupt never leaves a half-written entry; a lock per entry makes concurrent runs
// wait for a build in progress instead of doing it twice, and dies with its holder.
import { createHash } from 'node:crypto';
import { mkdir, rename, rm, writeFile, readFile, access, constants, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
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

/** When an entry was completed: the date its completion mark holds; undefined for an incomplete entry. */
export async function completedAt(dir: string): Promise<Date | undefined> {
  const mark = join(dir, COMPLETE);
  const text = await readFile(mark, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const written = new Date(text.trim());
  return Number.isNaN(written.getTime()) ? (await stat(mark)).mtime : written;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The pid written in a lock directory, if any. */
export async function lockOwner(path: string): Promise<number | undefined> {
  const pid = Number((await readFile(join(path, 'pid'), 'utf8').catch(() => '')).trim() || NaN);
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/**
 * Hold `name` as an abstract Unix socket, or return undefined when another process holds
 * it. The kernel frees such a name when its process ends, however it ends, so a lock can
 * never be left behind by a dead holder and no waiter ever has to judge one stale.
 */
function holdName(name: string): Promise<Server | undefined> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' ? resolve(undefined) : reject(err)));
    server.listen(name, () => {
      server.unref();
      resolve(server);
    });
  });
}

const lockName = (path: string) => `\0ktrial-lock:${createHash('sha256').update(resolve(path)).digest('hex')}`;

/** Write the holder's pid at `path` for the lock `server` now holds; returns the release function. */
async function claim(path: string, server: Server): Promise<() => Promise<void>> {
  try {
    await rm(path, { recursive: true, force: true });
    await mkdir(path);
    await writeFile(join(path, 'pid'), String(process.pid));
  } catch (err) {
    server.close();
    throw err;
  }
  return async () => {
    await rm(path, { recursive: true, force: true });
    await new Promise<void>((r) => server.close(() => r()));
  };
}

/**
 * Take an exclusive lock on `path`; returns the release function. What excludes others is an
 * abstract socket named after the path (see holdName); the directory at `path` holds the
 * holder's pid, for waiters to name it and for a person to see. A directory left by a holder
 * that died is replaced by the next holder.
 */
export async function lock(path: string, onWait?: (ownerPid: number) => void): Promise<() => Promise<void>> {
  let told = false;
  for (;;) {
    const server = await holdName(lockName(path));
    if (server) return claim(path, server);
    const owner = told ? undefined : await lockOwner(path);
    if (onWait && owner !== undefined) {
      onWait(owner);
      told = true;
    }
    await sleep(500);
  }
}

/** The lock on `path` as lock() takes it, without waiting: undefined when another process holds it. */
export async function tryLock(path: string): Promise<(() => Promise<void>) | undefined> {
  const server = await holdName(lockName(path));
  return server ? claim(path, server) : undefined;
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
