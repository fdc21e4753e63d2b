// The TAP/KTAP parser on outputs recorded from real kselftest programs (test/fixtures/tap/,
// see its README) and on the format's edge cases: directives, nesting in its three forms,
// plans that are not met, Bail out!, YAML blocks; and the cases a stream turns into.
import { readFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoPath } from '../../harness/common/paths.js';
import { loadSuite, parseSuite } from '../../harness/scenarios/load.js';
import { runSuite, tapCases } from '../../harness/scenarios/run.js';
import { flattenPoints, parseTap, pointVerdict, streamProblems } from '../../harness/scenarios/tap.js';
import type { GuestExec } from '../../harness/scenarios/types.js';

const fixture = (name: string) => readFileSync(repoPath(`test/fixtures/tap/${name}`), 'utf8');

// The TEST() macros of tools/testing/selftests/core/close_range_test.c in linux-source-6.1,
// in source order; kselftest_harness names each "global.NAME".
const CLOSE_RANGE_TESTS = ['core_close_range', 'close_range_unshare', 'close_range_unshare_capped', 'close_range_cloexec', 'close_range_cloexec_unshare', 'close_range_cloexec_syzbot', 'close_range_cloexec_unshare_syzbot', 'close_range_bitmap_corruption'];

for (const file of ['close_range_test.host.txt', 'close_range_test.guest-6.1.txt']) {
  t.test(`${file}: kselftest_harness output`, async (t) => {
    const s = parseTap(fixture(file));
    t.same(streamProblems(s), []);
    t.equal(s.plan?.count, CLOSE_RANGE_TESTS.length);
    t.same(s.points.map((p) => p.description), CLOSE_RANGE_TESTS.map((n) => `global.${n}`));
    t.ok(s.points.every((p) => pointVerdict(p) === 'passed'));
    t.match(s.points[0]!.diagnostics.join('\n'), /RUN\s+global\.core_close_range/);
  });
}

for (const file of ['clone3.host.txt', 'clone3.guest-6.1.txt']) {
  t.test(`${file} (kselftest.h): 17 points, as ksft_set_plan(17) in clone3.c announces`, async (t) => {
    const s = parseTap(fixture(file));
    t.same(streamProblems(s), []);
    t.equal(s.points.length, 17);
    t.same(s.points.map((p) => p.number), Array.from({ length: 17 }, (_, i) => i + 1));
    t.match(s.points[3]!.diagnostics.join('\n'), /expected -22/);
  });
}

t.test('mincore_selftest on the 6.1 smoke kernel: passes and real failures', async (t) => {
  const text = fixture('mincore_selftest.guest-6.1.txt');
  const s = parseTap(text);
  t.same(streamProblems(s), []);
  const printed = [...text.matchAll(/^(not )?ok \d+ (\S+)$/gm)].map((m) => [m[2], m[1] ? 'failed' : 'passed']);
  t.equal(printed.length, 5);
  t.same(s.points.map((p) => [p.description, pointVerdict(p)]), printed);
  const cases = tapCases({ suite: 'k', name: 'mincore', index: 1 }, s);
  t.match(cases[1]!.failure?.output, /FAIL\s+global\.check_anonymous_locked_pages/, 'a failed point keeps the lines printed before it');
});

t.test('clone3_set_tid in the guest: forked children flushed copies of the buffered stdout, so the stream is garbled', async (t) => {
  const text = fixture('clone3_set_tid.guest-6.1.txt');
  const s = parseTap(text);
  const printed = [...text.matchAll(/^ok (\d+) /gm)].map((m) => Number(m[1]));
  t.equal(s.plan?.count, 29);
  t.equal(s.points.length, printed.length);
  t.ok(printed.length > 29, 'more result lines than planned');
  const problems = streamProblems(s);
  t.match(problems, [/test 18 where test 19 was due/]);
  t.match(problems.at(-1), new RegExp(`plan announced 29 tests, ${printed.length} reported`));
});

t.test('directives: SKIP, TODO, kselftest XFAIL, XPASS and error; escaped #', async (t) => {
  const s = parseTap(['TAP version 13', '1..8', 'ok 1 - plain', 'not ok 2 broken', 'ok 3 # SKIP no such feature', 'not ok 4 - known # TODO fix later', 'ok 5 fixed # todo was broken', 'ok 6 # XFAIL expected to fail', 'not ok 7 # error setup failed', 'ok 8 a \\# not a directive'].join('\n'));
  t.same(streamProblems(s), []);
  t.same(s.points.map(pointVerdict), ['passed', 'failed', 'skipped', 'expected-failure', 'unexpectedly-passed', 'expected-failure', 'failed', 'passed']);
  t.same(s.points.map((p) => p.description), ['plain', 'broken', '', 'known', 'fixed', '', '', 'a # not a directive']);
  t.equal(s.points[2]!.directive?.reason, 'no such feature');
});

t.test('kselftest_harness skip lines carry no name: the RUN line before them names the test', async (t) => {
  const s = parseTap(['TAP version 13', '1..2', '#  RUN           ns.first ...', '#      SKIP      no namespace', '#            OK  ns.first', 'ok 1 # SKIP no namespace', '#  RUN           ns.second ...', 'ok 2 ns.second'].join('\n'));
  t.same(s.points.map((p) => p.description), ['ns.first', 'ns.second']);
});

t.test('KTAP nesting by indentation, with a # Subtest heading', async (t) => {
  const text = ['KTAP version 1', '1..2', '    KTAP version 1', '    # Subtest: inner', '    1..2', '    ok 1 a', '    not ok 2 b', 'not ok 1 inner', 'ok 2 outer2'].join('\n');
  const s = parseTap(text);
  t.same(streamProblems(s), []);
  t.same(
    flattenPoints(s).map(({ path, point }) => [path.join('/'), pointVerdict(point)]),
    [['inner', 'failed'], ['inner/a', 'passed'], ['inner/b', 'failed'], ['outer2', 'passed']],
  );
});

t.test('the kselftest runner\'s "# "-prefixed nested streams', async (t) => {
  const inner = fixture('close_range_test.host.txt').trimEnd().split('\n').map((l) => `# ${l}`);
  const s = parseTap(['TAP version 13', '1..1', '# selftests: core: close_range_test', ...inner, 'ok 1 selftests: core: close_range_test'].join('\n'));
  t.same(streamProblems(s), []);
  const flat = flattenPoints(s).map(({ path }) => path.join('/'));
  t.same(flat, ['selftests: core: close_range_test', ...CLOSE_RANGE_TESTS.map((n) => `selftests: core: close_range_test/global.${n}`)]);
});

t.test('incomplete streams are problems: plan not met, no plan, nothing, Bail out!, numbering', async (t) => {
  t.match(streamProblems(parseTap('TAP version 13\n1..3\nok 1 a\nok 2 b\n')), [/plan announced 3 tests, 2 reported/]);
  t.match(streamProblems(parseTap('ok 1 a\n')), [/no plan line/]);
  t.match(streamProblems(parseTap('segfault\n')), [/no TAP plan and no test results/]);
  const bail = parseTap('TAP version 13\n1..3\nok 1 a\nBail out! cannot open /dev/x\nok 2 b\n');
  t.equal(bail.points.length, 1);
  t.match(streamProblems(bail), [/Bail out! cannot open \/dev\/x/]);
  t.match(streamProblems(parseTap('1..2\nok 1 a\nok 3 c\n')), [/test 3 where test 2 was due/]);
  t.match(streamProblems(parseTap('1..1\n    1..1\n    ok 1 x\n')), [/nested stream with no result line/, /plan announced 1/]);
  t.same(streamProblems(parseTap('TAP version 13\n1..0 # SKIP no clone3\n')), []);
});

t.test('TAP 13 YAML blocks are diagnostics of their point, output before the version line is ignored', async (t) => {
  const s = parseTap('noise\nTAP version 13\n1..2\nnot ok 1 a\n  ---\n  message: bad\n  ...\nok 2 b\n');
  t.same(streamProblems(s), []);
  t.same(s.points[0]!.diagnostics, ['message: bad']);
});

t.test('tapCases: names CASE/POINT, verdicts, skip as not run, failure output', async (t) => {
  const s = parseTap('TAP version 13\n1..3\nok 1 a\n# fd 3 still open\nnot ok 2 b\nok 3 c # SKIP needs CONFIG_X\n');
  const cases = tapCases({ suite: 'k', name: 'prog', index: 4 }, s);
  t.same(cases.map((c) => [c.name, c.verdict, c.notRun?.cause]), [['prog/a', 'passed', undefined], ['prog/b', 'failed', undefined], ['prog/c', 'not-run', 'skipped']]);
  t.match(cases[1]!.failure?.output, /fd 3 still open/);
  t.ok(cases.every((c) => c.index === 4));
  const dup = tapCases({ suite: 'k', name: 'p', index: 1 }, parseTap('1..2\nok 1 same\nok 2 same\n'));
  t.same(dup.map((c) => c.name), ['p/same', 'p/same (test 2)']);
});

/** A guest that answers a tap step with fixed output. */
const tapGuest = (stdout: string, exitCode = 0): GuestExec & { copies: string[] } => {
  const copies: string[] = [];
  return {
    copies,
    async exec(command) {
      if (command.endsWith('--version')) return { exitCode: 0, stdout: '{"agent":"ktrial-agent","protocol":1}\n', stderr: '', durationMs: 1 };
      if (command.includes('reap')) return { exitCode: 0, stdout: '', stderr: '', durationMs: 1 };
      return { exitCode, stdout, stderr: '', durationMs: 1 };
    },
    kernelCrash: () => undefined,
    async copy(host, dest, mode) {
      copies.push(`${host} ${dest} ${mode.toString(8)}`);
    },
  };
};

const SUITE = `name: k
files:
  - {src: close_range_test.host.txt, dest: /opt/out.txt}
cases:
  - name: prog
    steps:
      - tap: /opt/prog
`;

t.test('a suite with a tap step: the files are copied, the case and its points reported', async (t) => {
  const suite = parseSuite(SUITE, repoPath('test/fixtures/tap/suite.yaml'));
  const guest = tapGuest(fixture('close_range_test.host.txt'));
  const results = await runSuite(suite, guest);
  t.same(guest.copies, [`${repoPath('test/fixtures/tap/close_range_test.host.txt')} /opt/out.txt 644`]);
  t.same(results.map((r) => [r.name, r.verdict]), [['prog', 'passed'], ...CLOSE_RANGE_TESTS.map((n) => [`prog/global.${n}`, 'passed'])]);
});

t.test('an incomplete stream fails the case; the points it reported stand', async (t) => {
  const suite = parseSuite(SUITE, repoPath('test/fixtures/tap/suite.yaml'));
  const results = await runSuite(suite, tapGuest('TAP version 13\n1..3\nok 1 a\n', 139));
  t.same(results.map((r) => [r.name, r.verdict]), [['prog', 'failed'], ['prog/a', 'passed']]);
  t.match(results[0]!.reason, /plan announced 3 tests, 1 reported \(exit 139\)/);
});

t.test('a program that skips itself as a whole is not run', async (t) => {
  const suite = parseSuite(SUITE, repoPath('test/fixtures/tap/suite.yaml'));
  const results = await runSuite(suite, tapGuest('TAP version 13\n1..0 # SKIP clone3() not supported\n', 4));
  t.same(results.map((r) => [r.name, r.verdict, r.notRun?.cause]), [['prog', 'not-run', 'skipped']]);
});

t.test('suite files are checked when the suite is loaded', async (t) => {
  t.throws(() => parseSuite(SUITE.replace('close_range_test.host.txt', 'missing.txt'), repoPath('test/fixtures/tap/suite.yaml')), { message: /missing\.txt .*does not exist/, where: { line: 3 } });
  t.throws(() => parseSuite(SUITE.replace('{src: close_range_test.host.txt, dest: /opt/out.txt}', '{dest: /opt/out.txt}'), repoPath('test/fixtures/tap/suite.yaml')), /exactly one of src/);
  t.throws(() => parseSuite(SUITE.replace('files:\n', 'files:\n  - {src: clone3.host.txt, dest: /opt/out.txt}\n'), repoPath('test/fixtures/tap/suite.yaml')), { message: /two files go to \/opt\/out\.txt/, where: { line: 4 } });
  t.throws(() => parseSuite(SUITE.replace('      - tap: /opt/prog', '      - tap: /opt/prog\n        expect: ok'), repoPath('test/fixtures/tap/suite.yaml')), /a tap step has no expect/);
});

t.test('a selftest the recipe does not build is reported when the suite is loaded, at its line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-tap-'));
  const file = join(dir, 'suite.yaml');
  await writeFile(file, SUITE.replace('{src: close_range_test.host.txt, dest: /opt/out.txt}', '{selftest: no_such_test, dest: /opt/x}'));
  await t.rejects(loadSuite(file), { message: /no selftest "no_such_test" in .*selftests\.yaml \(it builds: close_range_test/, where: { file, line: 3 } });
  await writeFile(file, SUITE.replace('{src: close_range_test.host.txt, dest: /opt/out.txt}', '{selftest: close_range_test, dest: /opt/x}'));
  t.same((await loadSuite(file)).files.map((f) => [f.from, f.dest, f.mode.toString(8)]), [[{ selftest: 'close_range_test' }, '/opt/x', '755']]);
});
