// The subject's own series given with --patch, as a kernel developer would have it: the
// quilt patches of kernel-patches/containers-2.6.20 and kernel-patches/ns-container written
// out as git format-patch mails (a directory of NNNN-*.patch with a cover letter), and the
// same mails as one mbox. On the plain 2.6.20 smoke trial, with the subject's config options
// and suite, the verdicts are the subject trial's case by case (its one expected failure
// counts as the failure it is there). The mbox is the same patches, so its kernel comes
// from the cache.
import t from 'tap';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const skip = await sourceSkip('smoke-2.6.20');
const SERIES = [
  ['containers-2.6.20', 'containers-core.patch'],
  ['containers-2.6.20', 'containers-task-hooks.patch'],
  ['containers-2.6.20', 'containers-cpu-acct.patch'],
  ['ns-container', 'ns-container.patch'],
] as const;
const OPTIONS = ['CONFIG_CONTAINERS=y', 'CONFIG_CONTAINER_CPUACCT=y', 'CONFIG_CONTAINER_NS=y', 'CONFIG_SYSVIPC=y'].flatMap((o) => ['--kconfig-add', o]);

/** A patch as a git format-patch mail: separator, headers, the patch's own text as message and diff. */
const asMail = (k: number, n: number, subject: string, body: string) =>
  `From 0000000000000000000000000000000000000000 Mon Sep 17 00:00:00 2001\nFrom: A U Thor <author@example.org>\nDate: Mon, 1 Jan 2007 00:00:00 +0000\nSubject: [PATCH ${k}/${n}] ${subject}\n\n${body.trimEnd()}\n-- \n2.39.5\n\n`;

const results = async (out: string) => JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
/** Case by case: an expected failure is the failure its trial expects. */
const outcomes = (r: RunResults) => r.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict === 'expected-failure' ? 'failed' : c.verdict]);

t.test('the subject series as --patch (a format-patch directory, then an mbox) gives the subject trial\'s verdicts', { skip }, async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-patch-option-'));
  const dir = join(root, 'outgoing');
  await mkdir(dir);
  const mails: string[] = [asMail(0, SERIES.length, 'containers and the ns subsystem for 2.6.20', 'The series, as it was mailed.\n')];
  for (const [i, [series, file]] of SERIES.entries()) mails.push(asMail(i + 1, SERIES.length, `${series}: ${file.replace(/\.patch$/, '')}`, await readFile(repoPath('kernel-patches', series, file), 'utf8')));
  for (const [i, m] of mails.entries()) await writeFile(join(dir, `${String(i).padStart(4, '0')}-${i ? 'patch' : 'cover-letter'}.patch`), m);
  const mbox = join(root, 'series.mbox');
  await writeFile(mbox, [...mails.slice(2), mails[0], mails[1]].join(''));

  const reference = await referenceRun('ns-container-2.6.20');
  const want = outcomes(reference.results);
  t.ok(want.length > 20, `the subject trial ran ${want.length} cases`);

  const suite = repoPath('test', 'scenarios', 'ns-container.yaml');
  const smoke = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');
  const byDir = join(root, 'by-dir');
  const r1 = await ktrial(['run', smoke, '--patch', dir, ...OPTIONS, '--suite', suite, '--out', byDir]);
  const res1 = await results(byDir);
  t.not(r1.code, 2, r1.code === 2 ? r1.stderr.slice(-1500) : 'the run is not refused');
  t.same(outcomes(res1), want, 'the format-patch directory: the same verdicts, case by case');
  t.same(res1.patches?.map((p) => [p.subject, p.from]), SERIES.map(([s, f]) => [`${s}: ${f.replace(/\.patch$/, '')}`, '--patch']), 'results.json names each patch by its subject');
  t.match(r1.stdout, /^patches: 4: containers-2\.6\.20: containers-core \([0-9a-f]{12}, --patch\); /m, 'and so does the summary');
  t.match(res1.rerun?.command.join(' '), new RegExp(` --patch ${dir}( |$)`), 'the re-run line repeats --patch');

  const byMbox = join(root, 'by-mbox');
  const r2 = await ktrial(['run', smoke, '--patch', mbox, ...OPTIONS, '--suite', suite, '--out', byMbox]);
  const res2 = await results(byMbox);
  t.not(r2.code, 2, r2.code === 2 ? r2.stderr.slice(-1500) : 'the run is not refused');
  t.equal(res2.kernel.cached, true, 'the same patches as one mbox: the kernel comes from the cache');
  t.same(res2.patches?.map((p) => p.sha256), res1.patches?.map((p) => p.sha256), 'hashed alike');
  t.same(outcomes(res2), want, 'the mbox: the same verdicts, case by case');
  t.match(r2.stderr, /skipped the cover letter/, 'the cover letter is passed over, and said so');
});
