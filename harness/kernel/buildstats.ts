// How far a kernel build has got: the objects compiled against the count the last full
// build of the same source made (kept in the cache), or, for a config not built before,
// that count scaled by the options each config enables.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../common/cache.js';
import { sha256, shortHash } from '../common/hash.js';

/** Lines of make's output that stand for one object compiled or assembled. */
export const OBJECT_LINE = /^\s+(CC|AS)\s/;

interface FullBuild {
  objects: number;
  /** Options the config enabled (=y or =m). */
  enabled: number;
}

/** Per config (by the final .config's sha256), the last full build; `last` is the most recent of any config. */
interface SourceBuilds {
  byConfig: Record<string, FullBuild>;
  last?: FullBuild;
}

export interface ObjectEstimate {
  objects: number;
  basis: 'same config' | 'scaled from another config';
}

const statsFile = (sourceId: string) => join(cacheRoot(), 'build-stats', `${shortHash(sha256(sourceId))}.json`);
const enabledOptions = (configText: string) => configText.split('\n').filter((l) => /^CONFIG_\w+=[ym]$/.test(l)).length;

async function readStats(sourceId: string): Promise<SourceBuilds> {
  try {
    return JSON.parse(await readFile(statsFile(sourceId), 'utf8')) as SourceBuilds;
  } catch {
    return { byConfig: {} };
  }
}

/** How many objects a full build of this source with this config will compile; undefined when it was never built. */
export async function expectedObjects(sourceId: string, configText: string): Promise<ObjectEstimate | undefined> {
  const stats = await readStats(sourceId);
  const same = stats.byConfig[sha256(configText)];
  if (same) return { objects: same.objects, basis: 'same config' };
  if (!stats.last?.enabled) return undefined;
  return { objects: Math.round((stats.last.objects * enabledOptions(configText)) / stats.last.enabled), basis: 'scaled from another config' };
}

/** Remember a full build's object count (written whole, then renamed into place). */
export async function recordFullBuild(sourceId: string, configText: string, objects: number): Promise<void> {
  const stats = await readStats(sourceId);
  const entry = { objects, enabled: enabledOptions(configText) };
  stats.byConfig[sha256(configText)] = entry;
  stats.last = entry;
  const file = statsFile(sourceId);
  await mkdir(join(cacheRoot(), 'build-stats'), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(stats, null, 2)}\n`);
  await rename(tmp, file);
}

/**
 * Counts objects in make's output as it comes: the status line and, when the expected count
 * is known, the share done; an estimate, so it stays below 1 until make has finished (a
 * build may compile more than the last one did).
 */
export class BuildCounter {
  compiled = 0;
  constructor(private readonly expected?: number) {}

  line(l: string): { status: string; share?: number } | undefined {
    if (!OBJECT_LINE.test(l)) return undefined;
    this.compiled++;
    const last = l.trim().split(/\s+/).pop();
    if (!this.expected) return { status: `${this.compiled} objects built, last ${last}` };
    return { status: `${this.compiled} of ~${this.expected} objects built, last ${last}`, share: Math.min(this.compiled / this.expected, 0.99) };
  }
}
