// Paths from suites, the command line and the guest: a suite copies into the guest only
// files under its own directory (no absolute path, no .., no symbolic link leading out), a
// guest path has no . or .. components and no control characters, a trial name cannot
// make its output directory climb out of out/, and ktrial's own outputs (reports, console
// logs, saved states, the run's initramfs) are never written through a symbolic link left
// at their name: each refusal names the file (and line) and what to do.
import t from 'tap';
import { mkdir, mkdtemp, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KtrialError } from '../../harness/common/errors.js';
import { guestPathProblem, ownFileStream, writeOwnFile } from '../../harness/common/paths.js';
import { loadSuite } from '../../harness/scenarios/index.js';
import { loadTrial } from '../../harness/trial/trial.js';
import { writeReports, type RunResults } from '../../harness/report/index.js';
import { writeRunOverlay } from '../../harness/image/index.js';
import { main } from '../../harness/cli.js';

const scratch = () => mkdtemp(join(tmpdir(), 'ktrial-paths-'));

async function suiteWithFile(dir: string, file: string): Promise<string> {
  const path = join(dir, 'suite.yaml');
  await writeFile(path, `name: s\nfiles:\n  - {src: ${JSON.stringify(file)}, dest: /opt/x}\ncases:\n  - name: c\n    steps:\n      - sh: "true"\n`);
  return path;
}

async function refusal(p: Promise<unknown>): Promise<KtrialError> {
  const e = await p.then(() => undefined, (x: unknown) => x);
  if (!(e instanceof KtrialError)) throw new Error(`expected a refusal, got ${String(e)}`);
  return e;
}

t.test("a suite's files come from under its own directory", async (t) => {
  const root = await scratch();
  const dir = join(root, 'suites');
  await mkdir(join(dir, 'data'), { recursive: true });
  await writeFile(join(dir, 'data', 'ok.txt'), 'fine');
  await writeFile(join(root, 'secret.txt'), 'not for guests');
  await symlink(join(root, 'secret.txt'), join(dir, 'link.txt'));
  await symlink(join(dir, 'data', 'ok.txt'), join(dir, 'inner-link.txt'));

  const ok = await loadSuite(await suiteWithFile(dir, 'data/ok.txt'));
  t.same(ok.files.map((f) => f.from), [{ path: join(dir, 'data', 'ok.txt') }], 'a file in a folder under the suite');
  t.ok(await loadSuite(await suiteWithFile(dir, 'inner-link.txt')), 'a link that stays under the suite');

  for (const [src, why] of [
    [join(root, 'secret.txt'), /is refused: it is an absolute path/],
    ['../secret.txt', /is refused: it leaves the suite's directory/],
    ['data/../../secret.txt', /is refused: it leaves the suite's directory/],
    ['link.txt', /is refused: it is a symbolic link to .*secret\.txt, outside the suite's directory/],
  ] as const) {
    const e = await refusal(loadSuite(await suiteWithFile(dir, src)));
    t.match(e.message, why, src);
    t.match(e.where, { file: /suite\.yaml$/, line: 3 }, `${src}: the suite's file and line`);
    t.equal(e.cls, 'bad-input');
  }
});

t.test('a guest path is absolute, with no . or .. and no control characters', async (t) => {
  t.equal(guestPathProblem('/opt/selftests/clone3'), undefined);
  t.equal(guestPathProblem("/opt/it's here/$(x)"), undefined, 'quotes and $ are the shell quoting\'s business, not a path problem');
  t.match(guestPathProblem('opt/x'), /absolute/);
  t.match(guestPathProblem('/opt/../etc/shadow'), /\.\. component/);
  t.match(guestPathProblem('/opt/./x'), /\. or \.\. component/);
  t.match(guestPathProblem('/opt/a\nb'), /control character/);
  t.match(guestPathProblem('/opt/'), /directory/);

  const dir = await scratch();
  await writeFile(join(dir, 'f'), 'x');
  const suite = join(dir, 'dest.yaml');
  await writeFile(suite, 'name: s\nfiles:\n  - {src: f, dest: /opt/../etc/x}\ncases:\n  - name: c\n    steps:\n      - sh: "true"\n');
  const e = await refusal(loadSuite(suite));
  t.match(e.message, /^dest "\/opt\/\.\.\/etc\/x" is refused: it holds a \. or \.\. component/);
  t.match(e.where, { file: /dest\.yaml$/, line: 3 });
});

t.test('--copy refuses a guest path that climbs, before anything is built', async (t) => {
  const dir = await scratch();
  await mkdir(join(dir, 'linux'));
  const trial = join(dir, 'copy.yaml');
  await writeFile(trial, 'name: copy\nsource:\n  path: linux\nconfig:\n  base: tinyconfig\n');
  await writeFile(join(dir, 'prog'), 'x');
  const errors: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => (errors.push(String(chunk)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(['boot', trial, '--out', join(dir, 'out'), '--copy', `${join(dir, 'prog')}:/opt/../bin/prog`, '--', 'true']);
  } finally {
    process.stderr.write = write;
  }
  t.equal(code, 2, 'bad usage');
  t.match(errors.join(''), /--copy .*: the guest path "\/opt\/\.\.\/bin\/prog" is refused: it holds a \. or \.\. component/);
});

t.test("a trial's name cannot climb out of out/", async (t) => {
  const dir = await scratch();
  await mkdir(join(dir, 'linux'));
  for (const name of ['..', '.', '.hidden']) {
    const file = join(dir, `t${name.length}.yaml`);
    await writeFile(file, `name: "${name}"\nsource:\n  path: linux\nconfig:\n  base: tinyconfig\n`);
    const e = await refusal(loadTrial(file));
    t.match(e.message, /:1:\d+: ".*" does not match/, `name ${name}: refused with its line`);
  }
});

t.test("ktrial's outputs are never written through a symbolic link", async (t) => {
  const dir = await scratch();
  const out = join(dir, 'out');
  await mkdir(out);
  const victim = join(dir, 'victim');
  await writeFile(victim, 'untouched');

  await symlink(victim, join(out, 'results.json'));
  const r: RunResults = { trial: 't', kernel: {}, phases: [], cases: [], status: 'ok' };
  const e1 = await refusal(writeReports(out, r));
  t.match(e1.message, /results\.json is a symbolic link: ktrial writes its outputs as files of its own/);
  t.match(e1.hint, /remove .*results\.json, or give the run another --out directory/);

  await symlink(victim, join(out, 'console.log'));
  t.throws(() => ownFileStream(join(out, 'console.log')), { message: /console\.log is a symbolic link/ }, 'a console log');

  await symlink(victim, join(out, 'initramfs.cpio'));
  await writeFile(join(dir, 'base.cpio'), 'base');
  const e3 = await refusal(writeRunOverlay({ initramfs: join(dir, 'base.cpio') }, 'ssh-ed25519 AAAA test', out));
  t.match(e3.message, /initramfs\.cpio is a symbolic link/, "the run's initramfs");

  await symlink(victim, join(out, 'guest-1.state.partial'));
  const e4 = await refusal(writeOwnFile(join(out, 'guest-1.state.partial'), 'x', 'append'));
  t.match(e4.message, /guest-1\.state\.partial is a symbolic link/, 'appending, too');

  t.equal(await readFile(victim, 'utf8'), 'untouched', 'the link target was never written');
  await writeOwnFile(join(out, 'plain.txt'), 'a');
  await writeOwnFile(join(out, 'plain.txt'), 'b', 'append');
  t.equal(await readFile(join(out, 'plain.txt'), 'utf8'), 'ab', 'a plain file is written and appended to');
});
