// Shards for CI engines: `--shard I/N` runs a deterministic 1/N of a run's cases. The rule
// depends only on the cases' names, not on their order: every case of every suite is keyed
// by suite/name, the keys are sorted by their SHA-256, and they are dealt out in that
// order, the first to shard 1, the second to shard 2, ..., so the shards differ in size by
// at most one case, and moving cases within a suite changes no shard.
import { createHash } from 'node:crypto';
import { badInput } from '../common/errors.js';
import { expandSuite } from './expand.js';
import type { Case, Suite } from './types.js';

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** What a shard's results record: which shard, the suites it was cut from, and its cases. */
export interface ShardRecord extends Shard {
  /** Every suite of the run with its case count and a digest of its case names, so merge can tell the same suites. */
  suites: { name: string; cases: number; digest: string }[];
  /** suite/name of each case of this shard, in run order. */
  cases: string[];
}

export const SHARD_RULE = 'cases keyed suite/name, sorted by SHA-256 of the key, dealt out round-robin from shard 1';

export const shardKey = (c: Pick<Case, 'suite' | 'name'>) => `${c.suite}/${c.name}`;

/** Whether a case is part of the shard (its cases' keys); without a shard every case is. */
export const inShard = (shard: ReadonlySet<string> | undefined, c: Pick<Case, 'suite' | 'name'>) => !shard || shard.has(shardKey(c));

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** "I/N" with 1 <= I <= N. */
export function parseShard(text: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN;
  const count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw badInput(`--shard takes I/N with 1 <= I <= N, got "${text}"`, { hint: 'e.g. --shard 2/3 runs the second of three shards' });
  return { index, count };
}

/** The shard's record for these suites: every case of them is in exactly one of the N shards. */
export function shardOf(suites: readonly Suite[], shard: Shard): ShardRecord {
  const expanded = suites.map((s) => ({ name: s.name, cases: expandSuite(s) }));
  const keys = expanded.flatMap((s) => s.cases.map(shardKey));
  const dealt = [...new Set(keys)].sort((a, b) => sha256(a).localeCompare(sha256(b)) || a.localeCompare(b));
  const members = new Set(dealt.filter((_, i) => i % shard.count === shard.index - 1));
  return {
    ...shard,
    suites: expanded.map((s) => ({ name: s.name, cases: s.cases.length, digest: sha256(s.cases.map(shardKey).join('\n')).slice(0, 16) })),
    cases: keys.filter((k) => members.has(k)),
  };
}
