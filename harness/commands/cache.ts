// `ktrial cache ls | du | prune`: what the cache holds, how much space each kind takes, and
// removing old entries. An entry in use is never removed: prune takes the entry's own lock
// (and a work tree's in-use lock) without waiting, and keeps any entry whose lock is held.
import { readdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cacheRoot, completedAt, lockOwner, tryLock } from '../common/cache.js';
import { run } from '../common/proc.js';
import { WORKTREE_STATE } from '../patch/apply.js';
import { alignColumns } from './columns.js';
import { UsageError } from './help.js';
import { EXIT_CODES } from '../report/index.js';

export interface CacheItem {
  kind: string;
  key: string;
  path: string;
  /**
   * When the entry was completed; for a work tree, when it was last used if that is later;
   * for a plain file (a download, a log, an accelerator verdict), when it was written.
   */
  time: Date;
  bytes: number;
  /** What a kernel entry's manifest.json says it is. */
  kernel?: { trial: string; release: string; source: string; compiler: string };
}

/** Names beside the entries that are not entries: locks, builds in progress, staging areas. */
const NOT_AN_ENTRY = /\.(lock|inuse)$|\.(tmp|staging)-\d+$/;
/** The sources runs were told about (--source, remembered): not rebuildable, so not an entry to prune. */
const REMEMBERED_SOURCES = join('sources', 'known');

/** Bytes on disk under each path, as du counts them. */
async function diskUsage(paths: readonly string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (paths.length === 0) return sizes;
  const r = await run('du', ['-s', '-B1', '--', ...paths]);
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+)\t(.*)$/.exec(line);
    if (m) sizes.set(m[2]!, Number(m[1]));
  }
  return sizes;
}

async function kinds(root: string): Promise<string[]> {
  const names = await readdir(root, { withFileTypes: true }).catch(() => []);
  return names.filter((d) => d.isDirectory()).map((d) => d.name).sort();
}

async function kernelFacts(dir: string): Promise<CacheItem['kernel']> {
  const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8').catch(() => '{}')) as {
    trial?: { name?: string };
    kernelRelease?: string;
    source?: { id?: string };
    toolchain?: { cc?: string };
  };
  return { trial: m.trial?.name ?? '?', release: m.kernelRelease ?? '?', source: m.source?.id ?? '?', compiler: m.toolchain?.cc ?? '?' };
}

/** Every entry of every kind, newest first within a kind. */
export async function scanCache(root = cacheRoot()): Promise<CacheItem[]> {
  const items: CacheItem[] = [];
  for (const kind of await kinds(root)) {
    const found: Omit<CacheItem, 'bytes'>[] = [];
    for (const key of (await readdir(join(root, kind))).sort()) {
      const path = join(root, kind, key);
      if (NOT_AN_ENTRY.test(key) || join(kind, key) === REMEMBERED_SOURCES) continue;
      const st = await stat(path).catch(() => undefined);
      if (!st) continue;
      let time = st.mtime;
      if (st.isDirectory()) {
        const done = await completedAt(path);
        if (!done) continue; // an entry being built, or one a crash left unfinished
        time = done;
        const used = kind === 'worktrees' ? (await stat(join(path, WORKTREE_STATE)).catch(() => undefined))?.mtime : undefined;
        if (used && used > time) time = used;
      }
      found.push({ kind, key, path, time, ...(kind === 'kernels' ? { kernel: await kernelFacts(path) } : {}) });
    }
    const sizes = await diskUsage(found.map((f) => f.path));
    items.push(...found.map((f) => ({ ...f, bytes: sizes.get(f.path) ?? 0 })).sort((a, b) => b.time.getTime() - a.time.getTime()));
  }
  return items;
}

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  for (; n >= 1024 && i < units.length - 1; i++) n /= 1024;
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}

const formatTime = (d: Date) => d.toISOString().slice(0, 16).replace('T', ' ');
/** Hashes in source ids are shortened, as git shortens commits. */
const shortId = (id: string) => id.replace(/[0-9a-f]{16,}/g, (h) => h.slice(0, 12));

export async function cacheLs(root = cacheRoot()): Promise<string> {
  const items = await scanCache(root);
  const out = [`cache ${root}`];
  for (const kind of [...new Set(items.map((i) => i.kind))]) {
    const of = items.filter((i) => i.kind === kind);
    out.push('', `${kind}/ (${of.length}, ${formatBytes(of.reduce((s, i) => s + i.bytes, 0))}):`);
    const rows =
      kind === 'kernels'
        ? [['  key', 'trial', 'release', 'source', 'compiler', 'built (UTC)', 'size'], ...of.map((i) => [`  ${i.key}`, i.kernel!.trial, i.kernel!.release, shortId(i.kernel!.source), i.kernel!.compiler, formatTime(i.time), formatBytes(i.bytes)])]
        : of.map((i) => [`  ${i.key}`, formatTime(i.time), formatBytes(i.bytes)]);
    out.push(alignColumns(rows));
  }
  if (items.length === 0) out.push('(empty)');
  return out.join('\n');
}

export async function cacheDu(root = cacheRoot()): Promise<string> {
  const items = await scanCache(root);
  const dirs = (await kinds(root)).map((k) => join(root, k));
  // Each kind's directory whole: locks, unfinished builds and logs take space too.
  const sizes = await diskUsage(dirs);
  const rows = dirs.map((d) => {
    const kind = d.slice(root.length + 1);
    const entries = items.filter((it) => it.kind === kind).length;
    return [`${kind}/`, `${entries} ${entries === 1 ? 'entry' : 'entries'}`, formatBytes(sizes.get(d) ?? 0)];
  });
  const total = [...sizes.values()].reduce((a, b) => a + b, 0);
  return `${alignColumns([...rows, ['total', '', formatBytes(total)]])}\n(${root})`;
}

export interface PruneOutcome {
  removed: CacheItem[];
  /** Entries prune would have removed but a process is using, with its pid when known. */
  inUse: { item: CacheItem; pid: number | undefined }[];
  freedBytes: number;
}

/** The locks that say an entry is in use: its own (held while it is built) and a work tree's in-use lock. */
const locksOf = (item: CacheItem) => [`${item.path}.lock`, ...(item.kind === 'worktrees' ? [`${item.path}.inuse`] : [])];

/**
 * Remove the entries completed more than `olderThanDays` ago, and the kernels beyond the
 * `keep` most recent; an entry whose lock another process holds is kept.
 */
export async function pruneCache(opts: { olderThanDays?: number; keep?: number }, root = cacheRoot(), now = new Date()): Promise<PruneOutcome> {
  const items = await scanCache(root);
  const doomed = new Set<CacheItem>();
  if (opts.olderThanDays !== undefined) {
    const cutoff = now.getTime() - opts.olderThanDays * 86_400_000;
    for (const i of items) if (i.time.getTime() < cutoff) doomed.add(i);
  }
  if (opts.keep !== undefined) for (const i of items.filter((i) => i.kind === 'kernels').slice(opts.keep)) doomed.add(i);
  const outcome: PruneOutcome = { removed: [], inUse: [], freedBytes: 0 };
  for (const item of doomed) {
    const released: (() => Promise<void>)[] = [];
    let heldBy: string | undefined;
    for (const l of locksOf(item)) {
      const release = await tryLock(l);
      if (!release) {
        heldBy = l;
        break;
      }
      released.push(release);
    }
    try {
      if (heldBy !== undefined) {
        outcome.inUse.push({ item, pid: await lockOwner(heldBy) });
        continue;
      }
      await rm(item.path, { recursive: true, force: true });
      outcome.removed.push(item);
      outcome.freedBytes += item.bytes;
    } finally {
      for (const release of released) await release();
    }
  }
  return outcome;
}

export function describePrune(o: PruneOutcome): string {
  const name = (i: CacheItem) => `${i.kind}/${i.key}${i.kernel ? ` (${i.kernel.trial}, ${i.kernel.release})` : ''}`;
  return [
    ...o.removed.map((i) => `removed ${name(i)}, ${formatTime(i.time)}, ${formatBytes(i.bytes)}`),
    ...o.inUse.map(({ item, pid }) => `kept ${name(item)}: in use${pid ? ` by process ${pid}` : ''}`),
    `freed ${formatBytes(o.freedBytes)}: ${o.removed.length} removed${o.inUse.length ? `, ${o.inUse.length} in use kept` : ''}`,
  ].join('\n');
}

/** `ktrial cache ls | du | prune [--older-than DAYS] [--keep N]`; returns the exit code. */
export async function cacheCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { 'older-than': { type: 'string' }, keep: { type: 'string' } } });
  const [action, ...extra] = positionals;
  if (extra.length) throw new UsageError(`cache ${action} takes no more arguments`, 'cache');
  const pruning = values['older-than'] !== undefined || values.keep !== undefined;
  if (pruning && action !== 'prune') throw new UsageError('--older-than and --keep are options of cache prune', 'cache');
  switch (action) {
    case 'ls':
      process.stdout.write(`${await cacheLs()}\n`);
      return EXIT_CODES.ok;
    case 'du':
      process.stdout.write(`${await cacheDu()}\n`);
      return EXIT_CODES.ok;
    case 'prune': {
      if (!pruning) throw new UsageError('cache prune needs --older-than DAYS, --keep N or both', 'cache');
      const count = (name: 'older-than' | 'keep') => {
        const v = values[name];
        if (v === undefined) return undefined;
        if (!/^\d+$/.test(v)) throw new UsageError(`--${name} takes a whole number, got "${v}"`, 'cache');
        return Number(v);
      };
      const olderThanDays = count('older-than');
      const keep = count('keep');
      process.stdout.write(`${describePrune(await pruneCache({ ...(olderThanDays !== undefined ? { olderThanDays } : {}), ...(keep !== undefined ? { keep } : {}) }))}\n`);
      return EXIT_CODES.ok;
    }
    default:
      throw new UsageError(action === undefined ? 'cache needs ls, du or prune' : `unknown cache action "${action}"`, 'cache');
  }
}
