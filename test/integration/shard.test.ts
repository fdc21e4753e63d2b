// Shards for CI engines, for real: the subject suite on the subject kernel run whole, then
// as shards 1/3, 2/3 and 3/3, then merged with `ktrial merge`; the merge must give exactly
// the whole run's cases, in its order, with its verdicts.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const TRIAL = repoPath('configs', 'trials', 'ns-container-2.6.20.yaml');
const OUT = repoPath('out', 'test', 'shard');
const readResults = async (dir: string) => JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as RunResults;
const verdicts = (r: RunResults) => r.cases.map((c) => `${c.suite}/${c.name} [${c.kind}]: ${c.verdict}${c.reason ? ` (${c.reason})` : ''}`);

t.test('the subject suite in three shards, merged, gives the serial run case by case', { skip: await sourceSkip('ns-container-2.6.20') }, async (t) => {
  const serial = await referenceRun('ns-container-2.6.20');
  t.equal(serial.code, 0, 'the serial run: every case as expected');
  const whole = serial.results;

  const shardDirs: string[] = [];
  const seen = new Set<string>();
  for (let i = 1; i <= 3; i++) {
    const dir = join(OUT, `shard-${i}`);
    shardDirs.push(dir);
    const r = await ktrial(['run', TRIAL, '--shard', `${i}/3`, '--out', dir, '-q']);
    t.equal(r.code, 0, `shard ${i}/3 exits 0`);
    const res = await readResults(dir);
    t.equal(res.shard?.index, i, `shard ${i}/3 records its index`);
    t.equal(res.shard?.count, 3);
    const keys = res.cases.filter((c) => c.kind === 'case').map((c) => `${c.suite}/${c.name}`);
    t.same(keys, res.shard?.cases, `shard ${i}/3 reports exactly its own cases, nothing of the others as "not run"`);
    t.notOk(res.cases.some((c) => c.verdict === 'not-run'), `shard ${i}/3 has no not-run case`);
    for (const k of keys) {
      t.notOk(seen.has(k), `${k} is in one shard only`);
      seen.add(k);
    }
    t.match(r.stdout, new RegExp(`shard ${i}/3: ${keys.length} of the ${whole.cases.filter((c) => c.kind === 'case').length} cases`), 'the summary says which share of the cases ran');
  }
  t.equal(seen.size, whole.cases.filter((c) => c.kind === 'case').length, 'the shards together hold every case once');

  const mergedDir = join(OUT, 'merged');
  const merged = await ktrial(['merge', ...shardDirs, '--out', mergedDir]);
  t.equal(merged.code, 0, `merge exits 0${merged.code ? `: ${merged.stderr}` : ''}`);
  const res = await readResults(mergedDir);
  t.same(verdicts(res), verdicts(whole), 'the merged run has the serial run\'s cases, in its order, with its verdicts and reasons');
  t.same(res.mergedFrom?.map((m) => m.shard), ['1/3', '2/3', '3/3'], 'results.json names the shards merged');
  for (const f of ['results.tap', 'junit.xml', 'summary.txt']) t.ok((await readFile(join(mergedDir, f), 'utf8')).length > 0, `merge wrote ${f}`);
  t.match(await readFile(join(mergedDir, 'results.tap'), 'utf8'), new RegExp(`^1\\.\\.${whole.cases.length}$`, 'm'), 'the merged TAP plan counts every case');

  const missing = await ktrial(['merge', shardDirs[0]!, shardDirs[2]!, '--out', join(OUT, 'refused')]);
  t.equal(missing.code, 2, 'a missing shard is bad input');
  t.match(missing.stderr, /shard 2\/3 of ns-container-2\.6\.20 is missing/);
});
