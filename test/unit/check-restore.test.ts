// kernel-patches/ns-container/check-restore.sh: the restored patch, damaged the way the
// original text was, must equal that text; and the script must notice when it does not.
import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { repoPath } from '../../harness/common/paths.js';

const DIR = repoPath('kernel-patches', 'ns-container');
const SCRIPT = join(DIR, 'check-restore.sh');
const RESTORED = join(DIR, 'ns-container.patch');
const DAMAGED = join(DIR, 'ns-container.damaged.txt');

t.test('the restored ns-container patch matches its damaged text', async (t) => {
  const r = await execa('sh', [SCRIPT], { reject: false });
  t.equal(r.exitCode, 0, r.stderr);
  t.match(r.stdout, /^check-restore: OK \(\d+ characters match\)$/m);

  const explicit = await execa('sh', [SCRIPT, RESTORED, DAMAGED], { reject: false });
  t.equal(explicit.exitCode, 0, 'the same with both files named');
  t.match(explicit.stdout, /check-restore: OK/);
});

t.test('a restored patch with one word changed is a mismatch', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-check-restore-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const text = await readFile(RESTORED, 'utf8');
  // One token outside any <...> span (the damage removes those): the first "struct".
  const at = text.search(/\bstruct\b/);
  t.ok(at >= 0, 'the patch has a "struct" to change');
  const changed = join(dir, 'changed.patch');
  await writeFile(changed, `${text.slice(0, at)}strukt${text.slice(at + 'struct'.length)}`);

  const r = await execa('sh', [SCRIPT, changed, DAMAGED], { reject: false });
  t.not(r.exitCode, 0, 'the script fails');
  t.match(r.stderr, /check-restore: MISMATCH/);
  t.match(r.stderr, /^< \S*strukt\S*$/m, 'the word-by-word diff shows the changed word');
  t.match(r.stderr, /^> \S*struct\S*$/m, 'and the damaged text\'s word');
  t.notMatch(r.stdout, /check-restore: OK/);
});

t.test('a missing or empty input is an error, never OK', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-check-restore-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const both = await execa('sh', [SCRIPT, join(dir, 'no-such.patch'), join(dir, 'no-such.txt')], { reject: false });
  t.equal(both.exitCode, 2, 'both inputs missing');
  t.notMatch(both.stdout, /OK/);
  t.match(both.stderr, /no-such\.patch is missing, unreadable or empty/);
  const one = await execa('sh', [SCRIPT, RESTORED, join(dir, 'no-such.txt')], { reject: false });
  t.equal(one.exitCode, 2, 'the damaged text missing');
  t.match(one.stderr, /no-such\.txt is missing/);
  await writeFile(join(dir, 'empty.patch'), '');
  const empty = await execa('sh', [SCRIPT, join(dir, 'empty.patch'), DAMAGED], { reject: false });
  t.equal(empty.exitCode, 2, 'an empty restored patch');
});
