import t from 'tap';
import { mkdtemp, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspectPatch, loadSeries, parseSeriesText } from '../../harness/patch/series.js';
import { describePatchFailure } from '../../harness/patch/apply.js';
import { KtrialError } from '../../harness/common/errors.js';

const good = `From: someone
Subject: a change

--- a/kernel/fork.c
+++ b/kernel/fork.c
@@ -10,3 +10,4 @@ static int x;
 a
-b
+b2
+b3
 c
--- /dev/null
+++ b/kernel/new.c
@@ -0,0 +1,2 @@
+int y;
+int z;
`;

t.test('series files: order, comments, blank lines', async (t) => {
  t.same(parseSeriesText('# first\n\none.patch\ntwo.patch -p1\n  # indented comment\nthree.patch # trailing\n'), [
    { name: 'one.patch', line: 3 },
    { name: 'two.patch', line: 4 },
    { name: 'three.patch', line: 6 },
  ]);
  t.throws(() => parseSeriesText('a.patch -p0\n'), /line 1: unsupported option -p0/);
});

t.test('a good patch lists the files it touches', async (t) => {
  t.same(inspectPatch(good, 'good.patch').sort(), ['kernel/fork.c', 'kernel/new.c']);
});

t.test('an empty patch is refused', async (t) => {
  const err = t.throws(() => inspectPatch('  \n', 'empty.patch')) as unknown as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /empty/);
});

t.test('a patch whose newlines were lost is refused as mangled', async (t) => {
  const oneLine = good.replace(/\n/g, ' ');
  const err = t.throws(() => inspectPatch(oneLine, 'mangled.patch')) as unknown as KtrialError;
  t.match(err.message, /no hunks: it is not a unified diff/);
  t.match(err.hint ?? '', /newlines may have been lost/);
});

t.test('a hunk shorter than its header counts is refused with its line', async (t) => {
  const truncated = good.split('\n').slice(0, 9).join('\n');
  const err = t.throws(() => inspectPatch(truncated, 't.patch')) as unknown as KtrialError;
  t.match(err.message, /hunk at line 6 ends early/);
  t.equal(err.where?.line, 6);
});

t.test('a hunk line that lost its leading space is named', async (t) => {
  const broken = good.replace('\n a\n', '\na\n');
  const err = t.throws(() => inspectPatch(broken, 'b.patch')) as unknown as KtrialError;
  t.match(err.message, /line 7 inside the hunk starting at line 6/);
});

t.test('loadSeries names the series line of a missing patch', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-series-'));
  await mkdir(join(dir, 's'));
  await writeFile(join(dir, 's', 'series'), 'a.patch\nmissing.patch\n');
  await writeFile(join(dir, 's', 'a.patch'), good);
  const err = (await loadSeries(join(dir, 's')).catch((e) => e)) as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /missing\.patch does not exist/);
  t.equal(err.where?.line, 2);
  const ok = await loadSeries(join(dir, 's', 'a.patch'));
  t.equal(ok.patches.length, 1);
});

t.test('patch failure output is reduced to file and hunk', async (t) => {
  const out = `checking file init/Kconfig
checking file kernel/fork.c
Hunk #2 FAILED at 1718.
1 out of 2 hunks FAILED
checking file kernel/nsproxy.c
`;
  const d = describePatchFailure(out);
  t.equal(d.file, 'kernel/fork.c');
  t.same(d.hunks, ['hunk #2 (at line 1718) of kernel/fork.c']);
  const missing = describePatchFailure(
    "can't find file to patch at input line 14\nPerhaps you used the wrong -p or --strip option?\nThe text leading up to this was:\n--------------------------\n|--- a/arch/x86/lib/copy_user_64.S\n|+++ b/arch/x86/lib/copy_user_64.S\n--------------------------\nFile to patch: \nSkip this patch? [y] \nSkipping patch.\n1 out of 1 hunk ignored\n",
  );
  t.equal(missing.file, 'arch/x86/lib/copy_user_64.S');
  t.equal(missing.summary, 'arch/x86/lib/copy_user_64.S does not exist in the tree');
});
