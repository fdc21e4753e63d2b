// A peer suite in the guest: kselftest programs from Debian's linux-source-6.1, built with
// musl-gcc -static, copied into the guest by the suite's files: and run by tap steps on the
// 6.1 smoke kernel; each test point is a case with its own verdict in every report. What is
// expected comes from the selftests' sources (their TEST() macros and ksft_set_plan()), not
// from ktrial's parser. Also `ktrial boot`: --copy (twice), --console and its default output directory.
import t from 'tap';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';
import { resolveSource } from '../../harness/source/source.js';
import { Progress } from '../../harness/common/progress.js';

const trial = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const suite = repoPath('test', 'scenarios', 'kselftest-core.yaml');
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-kselftest-${name}-`));

/** The selftest sources, from the same Debian tree the recipe builds them from. */
async function selftestSource(rel: string): Promise<string> {
  const ctx = { progress: new Progress(() => {}), signal: new AbortController().signal };
  const tree = await resolveSource({ kind: 'debian', name: 'linux-source-6.1', pkg: 'linux-source-6.1' }, undefined, ctx);
  return readFile(join(tree.dir, 'tools/testing/selftests', rel), 'utf8');
}

t.test('kselftest-core on the 6.1 smoke kernel: every test point a case', async (t) => {
  const closeRange = [...(await selftestSource('core/close_range_test.c')).matchAll(/^TEST\((\w+)\)/gm)].map((m) => `global.${m[1]}`);
  const clone3Plan = Number(/ksft_set_plan\((\d+)\)/.exec(await selftestSource('clone3/clone3.c'))![1]);
  t.ok(closeRange.length > 0 && clone3Plan > 0, 'the sources name the tests');

  const out = await tmp('run');
  const run = await ktrial(['run', trial, '--suite', suite, '--out', out]);
  if (run.code !== 0) t.comment(run.stderr.slice(-3000));
  t.equal(run.code, 0, 'every case as expected');
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  const byName = new Map(res.cases.map((c) => [c.name, c]));
  t.equal(byName.get('close_range_test')?.verdict, 'passed', 'the program printed a complete stream');
  t.same(
    res.cases.filter((c) => c.name.startsWith('close_range_test/')).map((c) => [c.name, c.verdict]),
    closeRange.map((n) => [`close_range_test/${n}`, 'passed']),
    'one passed case per TEST() of close_range_test.c, in order',
  );
  const clone3 = res.cases.filter((c) => c.name.startsWith('clone3/'));
  t.equal(clone3.length, clone3Plan, 'one case per test of clone3.c\'s plan');
  t.ok(clone3.every((c) => c.verdict === 'passed'), 'clone3 passes on 6.1 with PID namespaces');

  const tap = await readFile(join(out, 'results.tap'), 'utf8');
  t.match(tap, /\nok \d+ - kselftest-core: close_range_test\/global\.close_range_unshare\n/);
  const junit = await readFile(join(out, 'junit.xml'), 'utf8');
  t.match(junit, /name="close_range_test\/global\.close_range_cloexec"/);
  const summary = await readFile(join(out, 'summary.txt'), 'utf8');
  t.match(summary, `cases: ${1 + closeRange.length + 1 + clone3Plan} (${1 + closeRange.length + 1 + clone3Plan} passed)`);
  // The recording the parser's unit test reads (test/fixtures/tap/README.md says how).
  const step = byName.get('close_range_test')!.steps[0]!;
  t.match(step.actual, new RegExp(`^${closeRange.length} test points \\(exit 0\\)`));
});

t.test('ktrial boot --copy, twice, puts host files into the guest with their modes; --console; the default output directory', async (t) => {
  const dir = await tmp('copy');
  const file = join(dir, 'hello.sh');
  await writeFile(file, '#!/bin/sh\necho copied-and-run\n', { mode: 0o755 });
  const data = join(dir, 'data.txt');
  await writeFile(data, 'the second file\n', { mode: 0o600 });
  // Without --out, from a directory of its own: the outputs go to ./out/<trial>.
  const cwd = await tmp('cwd');
  const r = await ktrial(['boot', trial, '--console', '--copy', `${file}:/opt/hello.sh`, '--copy', `${data}:/opt/data.txt`, '--', 'sh', '-c', '/opt/hello.sh && cat /opt/data.txt && ls -l /opt/data.txt'], {}, undefined, cwd);
  if (r.code !== 0) t.comment(r.stderr.slice(-3000));
  t.equal(r.code, 0);
  const [run, cat, ls] = r.stdout.trim().split('\n');
  t.equal(run, 'copied-and-run', 'the first file is there and runs (its mode 755 kept)');
  t.equal(cat, 'the second file', 'the second file is there');
  t.match(ls, /^-rw------- /, 'with its mode 600');
  const consoleLog = await readFile(join(cwd, 'out', 'smoke-debian-6.1', 'console.log'), 'utf8');
  t.match(consoleLog, /^Linux version 6\.1/m, 'the console log is in out/smoke-debian-6.1 under the current directory');
  // (the serial console ends its lines with \r\n)
  const echoed = [...r.stderr.matchAll(/^ {2}console\| (.*)$/gm)].map((m) => m[1]!.trimEnd());
  const kernelBanner = consoleLog.split('\n').find((l) => l.startsWith('Linux version '))?.trimEnd();
  t.ok(kernelBanner && echoed.includes(kernelBanner), '--console echoes the console\'s lines on stderr');
  t.ok(echoed.length > 10, `${echoed.length} console lines echoed`);
  const bad = await ktrial(['boot', trial, '--out', await tmp('bad'), '--copy', `${join(dir, 'missing')}:/opt/x`, '--', 'true']);
  t.equal(bad.code, 2, 'a missing SRC is bad input, before anything is built');
  t.match(bad.stderr, /missing does not exist/);
  const usage = await ktrial(['boot', trial, '--copy', 'no-destination', '--', 'true']);
  t.equal(usage.code, 2);
  t.match(usage.stderr, /expected SRC:DEST/);
});
