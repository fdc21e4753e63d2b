// ktrial merge on shards recorded from real runs (test/fixtures/shards/README.md says how),
// and the shard rule itself on the subject's suite. What each merge must refuse was read
// off the recorded files: their kernels, trials, shard counts and suites.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { repoPath } from '../../harness/common/paths.js';
import { KtrialError } from '../../harness/common/errors.js';
import { loadRun } from '../../harness/compare/index.js';
import { mergeShards } from '../../harness/commands/merge.js';
import { expandSuite, loadSuite, parseShard, shardOf, type Suite } from '../../harness/scenarios/index.js';

const shardFixture = (name: string) => repoPath('test', 'fixtures', 'shards', `${name}.results.json`);
const KTRIAL = repoPath('bin', 'ktrial.js');

async function merge(...names: string[]) {
  const runs = [];
  for (const n of names) runs.push(await loadRun(n.includes('/') ? n : shardFixture(n)));
  return mergeShards(runs);
}

async function refusal(t: Test, names: string[], message: RegExp, what: string) {
  const err = await merge(...names).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KtrialError && err.cls === 'bad-input', `${what}: bad input`);
  t.match((err as Error).message, message, what);
}

t.test('the two shards of the smoke trial (recorded by two states of ktrial, see test/fixtures/shards/README.md) merge into one run, in suite order', async (t) => {
  const one = (await loadRun(shardFixture('smoke.shard-1-of-2'))).results;
  const two = (await loadRun(shardFixture('smoke.shard-2-of-2'))).results;
  const merged = await merge('smoke.shard-1-of-2', 'smoke.shard-2-of-2');
  t.equal(merged.cases.length, one.cases.length + two.cases.length, 'every case of both shards');
  t.same(
    merged.cases.map((c) => c.index),
    [...one.cases, ...two.cases].map((c) => c.index).sort((a, b) => a - b),
    'in the suite\'s order',
  );
  t.equal(merged.cases.length, one.shard!.suites[0]!.cases, 'as many cases as the suite has');
  t.equal(merged.status, 'ok');
  t.same(merged.mergedFrom?.map((m) => m.shard), ['1/2', '2/2']);
  t.equal(merged.kernel.qemuPid, undefined, "no shard's QEMU pid");
  t.same(await merge('smoke.shard-2-of-2', 'smoke.shard-1-of-2'), merged, 'the order the shards are given in does not matter');
});

t.test('merge refuses what is not one run in N shards', async (t) => {
  await refusal(t, ['smoke.shard-1-of-2'], /shard 2\/2 of smoke-2\.6\.20 is missing/, 'a missing shard');
  await refusal(t, ['smoke.shard-1-of-2', 'smoke-again.shard-1-of-2', 'smoke.shard-2-of-2'], /shard 1\/2 is given twice: .*smoke\.shard-1-of-2\.results\.json and .*smoke-again\.shard-1-of-2\.results\.json/, 'a shard given twice (two runs of it)');
  await refusal(t, ['smoke.shard-1-of-2', 'smoke.shard-1-of-2'], /shard 1\/2 is given twice/, 'a shard given twice (the same file)');
  await refusal(t, ['smoke.shard-1-of-2', 'ns-container.shard-2-of-2'], /different kernels \(config hash\): .*smoke\.shard-1-of-2.* has "[0-9a-f]+", .*ns-container\.shard-2-of-2.* has "[0-9a-f]+"/, 'shards of different kernels');
  await refusal(t, ['smoke.shard-1-of-2', 'two-suites.shard-2-of-2'], /different suites/, 'shards of different suites');
  await refusal(t, ['smoke.shard-1-of-2', 'smoke.shard-2-of-2', 'smoke.shard-1-of-3'], /different shard counts: .* has 2, .* has 3/, 'shards of different counts');
  await refusal(t, ['smoke.shard-1-of-2', repoPath('test', 'fixtures', 'reports', 'all-passed.results.json')], /all-passed\.results\.json is not the output of a shard/, 'a run without --shard');
});

t.test('ktrial merge writes the reports (by default in ./out/<trial>) and exits 2 on a refusal', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-merge-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  // Without --out, from `out` as the current directory: the reports go to ./out/<trial>.
  const ok = await execa('node', [KTRIAL, 'merge', shardFixture('smoke.shard-1-of-2'), shardFixture('smoke.shard-2-of-2')], { reject: false, cwd: out });
  t.equal(ok.exitCode, 0, ok.stderr);
  t.match(ok.stdout, /merged from 2 shards: 1\/2 .* \(ok, exit 0\); 2\/2 .* \(ok, exit 0\)/);
  const merged = join(out, 'out', 'smoke-2.6.20');
  const written = JSON.parse(await readFile(join(merged, 'results.json'), 'utf8'));
  t.equal(written.format, 'ktrial-results/1');
  t.equal(written.mergedFrom.length, 2);
  for (const f of ['results.tap', 'junit.xml', 'summary.txt']) t.ok((await readFile(join(merged, f), 'utf8')).length > 0, f);
  const missing = await execa('node', [KTRIAL, 'merge', shardFixture('smoke.shard-2-of-2'), '--out', out], { reject: false });
  t.equal(missing.exitCode, 2);
  t.match(missing.stderr, /shard 1\/2 of smoke-2\.6\.20 is missing/);
});

t.test('the shard rule: every case in one shard, even sizes, independent of the suite order', async (t) => {
  t.same(parseShard('2/3'), { index: 2, count: 3 });
  for (const bad of ['0/3', '4/3', '3', 'a/b', '1/0']) t.throws(() => parseShard(bad), { message: /--shard takes I\/N/ }, bad);
  const suite = await loadSuite(repoPath('test', 'scenarios', 'ns-container.yaml'));
  const all = expandSuite(suite).map((c) => `${c.suite}/${c.name}`);
  const reordered: Suite = { ...suite, cases: [...suite.cases].reverse() };
  for (const n of [1, 2, 3, 7]) {
    const shards = Array.from({ length: n }, (_, i) => shardOf([suite], { index: i + 1, count: n }));
    t.same(shards.flatMap((s) => s.cases).sort(), [...all].sort(), `${n} shard(s): every case exactly once`);
    const sizes = shards.map((s) => s.cases.length);
    t.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `${n} shard(s): sizes ${sizes.join(', ')} differ by at most one`);
    shards.forEach((s) => t.same(s.cases, all.filter((k) => s.cases.includes(k)), `${n} shard(s): shard ${s.index} keeps the run order`));
    const again = Array.from({ length: n }, (_, i) => shardOf([reordered], { index: i + 1, count: n }));
    t.same(again.map((s) => [...s.cases].sort()), shards.map((s) => [...s.cases].sort()), `${n} shard(s): the same cases when the suite's cases are reordered`);
  }
  t.not(shardOf([suite], { index: 1, count: 1 }).suites[0]!.digest, shardOf([reordered], { index: 1, count: 1 }).suites[0]!.digest, 'the suite digest follows the case order, so merge tells a reordered suite');
});
