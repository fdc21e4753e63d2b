// A series patch by patch, on the 6.1 smoke trial, with the five fixture patches of
// test/fixtures/patches/each-6.1 (a git format-patch directory). What each does, and so the
// row it must give: 1 a comment (nothing changes), 2 uses an undeclared name (does not
// build), 3 declares it (builds again), 4 refuses sethostname with EACCES instead of EPERM
// (the case expecting EPERM regresses), 5 panics at boot (does not boot). --first-bad must
// name patch 4 within ceil(log2 5) + 1 builds, counted from the rows' own results.json.
import t from 'tap';
import { readFile, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { repoPath } from '../../harness/common/paths.js';
import type { PatchRow } from '../../harness/eachpatch.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const SERIES = repoPath('test', 'fixtures', 'patches', 'each-6.1');
const ERRNO_CASE = 'uid 0 without CAP_SYS_ADMIN cannot set the hostname';
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-each-${name}-`));
const table = async (out: string) => JSON.parse(await readFile(join(out, 'each-patch.json'), 'utf8')) as { rows: PatchRow[]; firstBad?: number | null };
const results = async (dir: string) => JSON.parse(await readFile(join(dir, 'results.json'), 'utf8')) as RunResults;

t.test('--first-bad finds the patch that flips the errno', async (t) => {
  const out = await tmp('first-bad');
  const r = await ktrial(['run', SMOKE, '--patch', SERIES, '--first-bad', '--out', out]);
  t.equal(r.code, 1, r.code === 1 ? `git bisect's "bad" for the patch found` : r.stderr.slice(-800));
  t.match(r.stdout, /^first bad: patch 4: uts: refuse sethostname without CAP_SYS_ADMIN with EACCES \([0-9a-f]{12}\)/m);
  t.match(r.stdout, new RegExp(`it breaks ${ERRNO_CASE}`), 'and what it changed');
  const doc = await table(out);
  t.equal(doc.firstBad, 4);
  let builds = 0;
  for (const row of doc.rows) if ((await results(row.dir)).kernel.cached === false) builds++;
  t.ok(builds <= Math.ceil(Math.log2(5)) + 1, `${builds} kernels built for ${doc.rows.length} rows (at most ${Math.ceil(Math.log2(5)) + 1})`);
  t.ok(doc.rows.length <= 5, `${doc.rows.length} rows run, not all six`);
});

t.test('--each-patch: a row per patch, each a run compare can read', async (t) => {
  const out = await tmp('each');
  const r = await ktrial(['run', SMOKE, '--patch', SERIES, '--each-patch', '--out', out]);
  t.equal(r.code, 3, 'the worst row is the kernel that does not boot (exit 3)');
  const { rows } = await table(out);
  t.same(rows.map((x) => x.upto), [0, 1, 2, 3, 4, 5], 'the base, then one row a patch');
  const [base, comment, broken, fixed, errno, panics] = rows as [PatchRow, PatchRow, PatchRow, PatchRow, PatchRow, PatchRow];
  for (const row of [base, comment, fixed, errno]) t.same([row.applies, row.builds, row.boots], [true, true, true], `row ${row.upto} applies, builds and boots`);
  t.equal(base.counts.failed, 0, 'the base passes');
  t.same([comment.regressions, comment.fixes, comment.counts.failed], [[], [], 0], 'a comment changes nothing');
  t.same([broken.applies, broken.builds], [true, false], 'patch 2 applies and does not build');
  t.match(broken.buildProblem, /kernel\/utsname\.c:\d+:\d+: error: .*ktrial_fixture_undeclared.* undeclared/, 'with the first compiler error');
  t.equal(broken.counts['not-run'], broken.counts.total, 'no case runs on a kernel that was not built');
  t.same([fixed.counts.failed, fixed.regressions], [0, []], 'patch 3 builds again and breaks nothing');
  t.same(errno.regressions, [ERRNO_CASE], 'patch 4: the EPERM case regresses, and only it');
  t.same([panics.builds, panics.boots], [true, false], 'patch 5 builds and does not boot');
  t.match(panics.error, /panicked before SSH came up/);
  t.match(r.stdout, /^ {2}4 {2}uts: refuse sethostname .* 1 regression: uid 0 without CAP_SYS_ADMIN/m, 'the table says so');
  const cmp = await ktrial(['compare', fixed.dir, errno.dir]);
  t.equal(cmp.code, 1, 'ktrial compare reads the rows and sees the regression');
  t.match(cmp.stdout, new RegExp(ERRNO_CASE));
  t.match((await results(errno.dir)).rerun?.command.join(' '), / --upto 4( |$)/, "a row's re-run line names its place in the series");
});

t.test('list --patch shows the series in the order it applies', async (t) => {
  const r = await ktrial(['list', '--patch', SERIES]);
  t.equal(r.code, 0);
  t.match(r.stdout, /^1\. uts: say in sethostname .*\n2\. uts: count the namespaces made .*\n3\. .*\n4\. uts: refuse sethostname .*\n5\. init: stop the boot before init runs /m);
  t.match(r.stderr, /^5 patches$/m);
});

t.test('--each-patch needs a series', async (t) => {
  const r = await ktrial(['run', SMOKE, '--each-patch', '--out', await tmp('none')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /has no patches, and no --patch was given/);
});
