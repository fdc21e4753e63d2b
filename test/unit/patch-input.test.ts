// --patch's forms, from mails written here as git format-patch writes them: a format-patch
// directory (the cover letter skipped, numbered without a gap), the same mails as one mbox in
// any order (sorted by [PATCH k/n], the cover letter and a mail without a diff skipped), the
// same patch in both forms hashed alike, and the bad inputs: an mbox with no patch, a gap
// in the numbering, a patch given twice. The plan puts --patch after the trial's series and
// repeats it in the re-run line.
import t from 'tap';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KtrialError } from '../../harness/common/errors.js';
import { loadSeries, mailSubject, refuseRepeats } from '../../harness/patch/series.js';
import { planRun } from '../../harness/runplan.js';

const scratch = () => mkdtemp(join(tmpdir(), 'ktrial-patch-input-'));

/** A mail as git format-patch writes it: separator, headers, message, diffstat, the diff, the signature. */
function mail(k: number, n: number, subject: string, file: string | undefined): string {
  const diff = file ? `diff --git a/${file} b/${file}\n--- a/${file}\n+++ b/${file}\n@@ -1 +1 @@\n-old ${k}\n+new ${k}\n` : '';
  return [
    `From ${String(k).repeat(40).slice(0, 40)} Mon Sep 17 00:00:00 2001`,
    'From: A U Thor <author@example.org>',
    'Date: Mon, 1 Jan 2024 00:00:00 +0000',
    `Subject: [PATCH v2 ${k}/${n}] ${subject}`,
    '',
    `What patch ${k} does.`,
    '',
    '---',
    ...(file ? [` ${file} | 2 +-`, ' 1 file changed, 1 insertion(+), 1 deletion(-)', '', diff.trimEnd()] : []),
    '-- ',
    '2.39.5',
    '',
    '',
  ].join('\n');
}

const SERIES = [mail(0, 3, 'the cover letter', undefined), mail(1, 3, 'fs: first', 'fs/a.c'), mail(2, 3, 'mm: second', 'mm/b.c'), mail(3, 3, 'net: third', 'net/c.c')];

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<KtrialError> {
  const e = typeof p === 'function' ? (() => { try { p(); } catch (x) { return x; } return undefined; })() : await p.then(() => undefined, (x: unknown) => x);
  if (!(e instanceof KtrialError)) throw new Error(`expected a refusal, got ${String(e)}`);
  return e;
}

t.test('a git format-patch directory: in number order, the cover letter skipped', async (t) => {
  const dir = join(await scratch(), 'out');
  await mkdir(dir);
  const names = ['0000-cover-letter.patch', '0001-fs-first.patch', '0002-mm-second.patch', '0003-net-third.patch'];
  for (const [i, name] of names.entries()) await writeFile(join(dir, name), SERIES[i]!);
  const s = await loadSeries(dir);
  t.same(s.patches.map((p) => p.subject), ['fs: first', 'mm: second', 'net: third']);
  t.same(s.patches.map((p) => p.touches), [['fs/a.c'], ['mm/b.c'], ['net/c.c']]);
  t.same(s.skipped, ['the cover letter 0000-cover-letter.patch']);
});

t.test('an mbox: split at its separator lines, sorted by [PATCH k/n], hashed as the files are', async (t) => {
  const root = await scratch();
  const dir = join(root, 'out');
  await mkdir(dir);
  for (const [i, text] of SERIES.entries()) if (i) await writeFile(join(dir, `000${i}-x.patch`), text);
  const noDiff = mail(4, 3, 'a reply without a diff', undefined).replace('[PATCH v2 4/3] ', 'Re: ');
  const mbox = join(root, 'series.mbox');
  await writeFile(mbox, [SERIES[3], SERIES[0], noDiff, SERIES[1], SERIES[2]].join(''));
  const s = await loadSeries(mbox);
  t.same(s.patches.map((p) => p.subject), ['fs: first', 'mm: second', 'net: third'], 'in k/n order, whatever the mbox order');
  t.equal(s.skipped.length, 2);
  t.match(s.skipped[0], /cover letter "the cover letter"/);
  t.match(s.skipped[1], /"Re: a reply without a diff" \(line \d+\): no diff in it/);
  t.same(s.patches.map((p) => p.namedAt.file), [mbox, mbox, mbox], 'each patch named by the mbox');
  const files = await loadSeries(dir);
  t.same(s.patches.map((p) => p.sha256), files.patches.map((p) => p.sha256), 'the same mails hash alike in both forms');
  const e = await refusal(() => refuseRepeats([files, s]));
  t.match(e.message, /the patch .*"fs: first".* is given twice/, 'the same series twice is refused');
});

t.test('bad input: an mbox with no patch, a gap in the numbering', async (t) => {
  const root = await scratch();
  const empty = join(root, 'empty.mbox');
  await writeFile(empty, SERIES[0]! + mail(1, 1, 'words only', undefined));
  const e1 = await refusal(loadSeries(empty));
  t.match(e1.message, /the mbox .*empty\.mbox holds no patch \(2 mails: the cover letter "the cover letter"; "words only" \(line \d+\): no diff in it\)/);
  t.equal(e1.cls, 'bad-input');
  const gap = join(root, 'gap');
  await mkdir(gap);
  await writeFile(join(gap, '0001-fs-first.patch'), SERIES[1]!);
  await writeFile(join(gap, '0003-net-third.patch'), SERIES[3]!);
  const e2 = await refusal(loadSeries(gap));
  t.match(e2.message, /has a gap in its numbering: 0003-net-third\.patch comes after 0001-fs-first\.patch \(expected 0002-\*\.patch\)/);
  const neither = join(root, 'neither');
  await mkdir(neither);
  await writeFile(join(neither, 'x.diff'), 'x');
  t.match((await refusal(loadSeries(neither))).message, /has neither a series file nor git format-patch files/);
});

t.test("a subject folded over two header lines is one title; its k/n is read from the prefix", async (t) => {
  t.same(mailSubject('From: x\nSubject: [PATCH RFC v3 07/12] sched: a long\n title\n\nbody'), { title: 'sched: a long title', position: { k: 7, n: 12 } });
  t.same(mailSubject('Subject: plain\n\n'), { title: 'plain' });
  t.equal(mailSubject('--- a/x\n+++ b/x\n'), undefined);
});

t.test("the plan: --patch after the trial's series, in the re-run line, refused with --kernel", async (t) => {
  const dir = await scratch();
  await mkdir(join(dir, 'linux'));
  await writeFile(join(dir, 'own.patch'), mail(1, 1, 'mine', 'a.c'));
  await writeFile(join(dir, 'trial.patch'), mail(1, 1, 'the trial\'s', 'b.c'));
  const trial = join(dir, 'p.yaml');
  await writeFile(trial, 'name: p\nsource:\n  path: linux\npatches: [trial.patch]\nconfig:\n  base: tinyconfig\n');
  const plan = await planRun(trial, { out: join(dir, 'out'), patch: [join(dir, 'own.patch')] });
  t.same(plan.patches, [{ path: join(dir, 'trial.patch'), from: 'trial' }, { path: join(dir, 'own.patch'), from: '--patch' }]);
  t.same(plan.rerun.options, ['--patch', join(dir, 'own.patch')]);
  const e = await refusal(planRun(trial, { out: join(dir, 'out'), patch: ['own.patch'], kernel: join(dir, 'bzImage') }));
  t.match(e.message, /--patch shapes a kernel build, and --kernel skips the build/);
});
