// Build progress: the share done, counted on a recorded 2.6.20 build log
// (test/fixtures/build-logs/README.md), and the object counts kept in the cache.
import t from 'tap';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BuildCounter, expectedObjects, recordFullBuild } from '../../harness/kernel/buildstats.js';
import { summariseBuildLog } from '../../harness/kernel/buildlog.js';
import { phaseLine } from '../../harness/common/progress.js';
import { repoPath } from '../../harness/common/paths.js';
import { useCache } from '../helpers/cache.js';

const log = () => readFile(repoPath('test', 'fixtures', 'build-logs', '2.6.20-gcc12-ok.log'), 'utf8');

t.test('with the count of the same build, the share grows with each object and stays below 1', async (t) => {
  const text = await log();
  const total = summariseBuildLog(text).compiled;
  const counter = new BuildCounter(total);
  const shares: number[] = [];
  let half: string | undefined;
  for (const l of text.split('\n')) {
    const seen = counter.line(l);
    if (!seen) continue;
    shares.push(seen.share!);
    if (shares.length === Math.floor(total / 2)) half = seen.status;
  }
  t.equal(shares.length, total, 'one update per object');
  t.ok(shares.every((s, i) => i === 0 || s >= shares[i - 1]!), 'never goes back');
  t.equal(shares[Math.floor(total / 2) - 1]!.toFixed(2), (Math.floor(total / 2) / total).toFixed(2), 'half the objects, half done');
  t.equal(shares.at(-1), 0.99, 'the last object is not "done": make may still link');
  t.match(half, new RegExp(`^${Math.floor(total / 2)} of ~${total} objects built, last \\S+\\.o$`));
});

t.test('an estimate below the real count never claims more than 99%; without one, no share', async (t) => {
  const text = await log();
  const low = new BuildCounter(10);
  const none = new BuildCounter();
  let maxShare = 0;
  let shareWithout: number | undefined;
  for (const l of text.split('\n')) {
    maxShare = Math.max(maxShare, low.line(l)?.share ?? 0);
    shareWithout ??= none.line(l)?.share;
  }
  t.equal(maxShare, 0.99);
  t.equal(shareWithout, undefined);
  t.ok(none.compiled > 200, `${none.compiled} objects counted`);
});

t.test('the phase line: elapsed, share and the time left', async (t) => {
  t.equal(phaseLine(90, undefined), '1m30s elapsed');
  t.equal(phaseLine(90, 0.5), '1m30s elapsed, ~50% done, about 1m30s left');
  t.equal(phaseLine(3, 0.01), '3.0s elapsed, ~1% done');
});

t.test('object counts kept per source: the same config, another config scaled by its options', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-buildstats-'));
  useCache(t, dir);
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const small = 'CONFIG_A=y\nCONFIG_B=m\n# CONFIG_C is not set\n';
  const big = 'CONFIG_A=y\nCONFIG_B=y\nCONFIG_C=y\nCONFIG_D=y\n';
  t.equal(await expectedObjects('tree-1', small), undefined, 'never built: no estimate');
  await recordFullBuild('tree-1', small, 300);
  t.same(await expectedObjects('tree-1', small), { objects: 300, basis: 'same config' });
  t.same(await expectedObjects('tree-1', big), { objects: 600, basis: 'scaled from another config' });
  t.equal(await expectedObjects('tree-2', small), undefined, 'another source has its own counts');
});
