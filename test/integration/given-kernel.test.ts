// Kernels built elsewhere, on real kernels: `--kernel` with the bzImage another run left in
// its output directory gives the verdicts of the run that built it; without a config the
// cases with requirements are marked as not judged; CONFIG_IKCONFIG's embedded config is
// found in a real 2.6.20 bzImage, equals the .config the build used and judges a run's
// requirements; a tree's O= build directory is booted with its own .config; the options
// that shape a build are refused with either.
import t from 'tap';
import { copyFile, mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import { extractIkconfig } from '../../harness/kernel/given.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const SMOKE20 = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');
const ONE_CASE = 'unshare UTS as root';
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-given-${name}-`));
const results = async (out: string) => JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
const verdicts = (r: RunResults) => r.cases.map((c) => `${c.suite}/${c.name}: ${c.verdict}`);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

t.test('--kernel with another run\'s bzImage and config: the same verdicts, what was given recorded', async (t) => {
  const normal = await referenceRun('smoke-debian-6.1');
  const built = normal.out;
  t.ok([0, 1].includes(normal.code), `the reference run ran its cases (exit ${normal.code}): ${normal.stderr.slice(-400)}`);
  const given = await tmp('given');
  const r = await ktrial(['run', SMOKE61, '--kernel', join(built, 'bzImage'), '--config', join(built, 'config'), '--out', given, '-q']);
  t.equal(r.code, normal.code, 'the same exit code');
  const [a, b] = [normal.results, await results(given)];
  t.ok(a.cases.length > 10, `${a.cases.length} cases in the reference run`);
  t.same(verdicts(b), verdicts(a), 'case by case, the same verdicts');
  t.notOk(b.phases.some((p) => ['source', 'patch', 'config', 'build'].includes(p.phase)), 'nothing was built');
  t.equal(b.kernel.bzImage, sha256(await readFile(join(built, 'bzImage'))), 'the bzImage by its sha256');
  t.equal(b.kernel.config, sha256(await readFile(join(built, 'config'))), 'the config by its sha256');
  t.equal(b.kernel.configFrom, '--config');
  t.equal(b.kernel.release, a.kernel.release);
  const line = b.rerun!.command.join(' ');
  t.match(line, `--kernel ${join(built, 'bzImage')}`, 're-run line repeats --kernel');
  t.match(line, `--config ${join(built, 'config')}`, 're-run line repeats --config');
  t.notMatch(line, '--source', 'no source for a kernel that was not built');
});

t.test('--kernel without any config: requirements are not judged, and the cases say so', async (t) => {
  const built = await tmp('built-noconfig');
  const b = await ktrial(['build', SMOKE61, '--out', built, '-q']);
  t.equal(b.code, 0, b.stderr.slice(-400));
  const out = await tmp('noconfig');
  const r = await ktrial(['run', SMOKE61, '--kernel', join(built, 'bzImage'), '--out', out, '--only', 'a hostname set in a new UTS namespace*']);
  const res = await results(out);
  t.equal(res.kernel.configFrom, 'none', 'the 6.1 smoke kernel has no CONFIG_IKCONFIG and no --config was given');
  const ran = res.cases.filter((c) => c.verdict !== 'not-run');
  t.ok(ran.length >= 1, 'the selected case ran');
  t.ok(ran.every((c) => c.requirementsUnjudged === true), 'each case with requirements is marked as not judged');
  t.match(res.notes?.join('\n') ?? '', /requirements not judged for \d+ case\(s\)/);
  t.match(r.stdout, /requirements not judged/, 'the summary says so');

  // `ktrial lava` takes the same kernel the same way: the case runs in the lab's guest, marked so.
  const lab = await tmp('noconfig-lava');
  const l = await ktrial(['lava', SMOKE61, '--kernel', join(built, 'bzImage'), '--run', '--out', lab, '--only', 'a hostname set in a new UTS namespace*']);
  const viaLava = await results(lab);
  t.equal(l.code, r.code, 'lava --run: the same exit code as run');
  const ranInLab = viaLava.cases.filter((c) => c.verdict !== 'not-run');
  t.same(ranInLab.map((c) => [c.name, c.verdict, c.requirementsUnjudged]), ran.map((c) => [c.name, c.verdict, true]), 'the same case ran, with the same verdict, marked as not judged');
  const unjudgedNote = (x: RunResults) => x.notes?.find((n) => n.startsWith('requirements not judged'));
  t.equal(unjudgedNote(viaLava), unjudgedNote(res), 'and the same note');
  t.match(unjudgedNote(res), new RegExp(`^requirements not judged for ${ran.length} case\\(s\\)`), 'counting the cases that ran');
});

t.test('CONFIG_IKCONFIG: the config a 2.6.20 bzImage carries is the .config it was built with', { skip: await sourceSkip('smoke-2.6.20') }, async (t) => {
  const out = await tmp('ikconfig');
  // Built with a current gcc, 2.6.20 keeps the config data only when /proc/config.gz uses it.
  const b = await ktrial(['build', SMOKE20, ...['CONFIG_IKCONFIG=y', 'CONFIG_IKCONFIG_PROC=y', 'CONFIG_DEBUG_KERNEL=y', 'CONFIG_DEBUG_INFO=y'].flatMap((o) => ['--kconfig-add', o]), '--out', out, '-q']);
  t.equal(b.code, 0, b.stderr.slice(-400));
  const config = await readFile(join(out, 'config'), 'utf8');
  t.match(config, /^CONFIG_IKCONFIG=y$/m);
  t.equal(await extractIkconfig(await readFile(join(out, 'bzImage'))), config, 'byte for byte');
  const without = await tmp('no-ikconfig');
  t.equal((await ktrial(['build', SMOKE20, '--out', without, '-q'])).code, 0);
  t.equal(await extractIkconfig(await readFile(join(without, 'bzImage'))), undefined, 'a kernel without CONFIG_IKCONFIG carries none');

  // A run of the kernel alone: its requirements are judged against the config it carries.
  const given = await tmp('ikconfig-run');
  const r = await ktrial(['run', SMOKE20, '--kernel', join(out, 'bzImage'), '--only', ONE_CASE, '--out', given, '-q']);
  t.equal(r.code, 0, r.stderr.slice(-400));
  const res = await results(given);
  t.equal(res.kernel.configFrom, 'ikconfig', 'the config came from the bzImage');
  t.equal(res.kernel.config, sha256(Buffer.from(config)), 'and is the .config the build used');
  const ran = res.cases.find((c) => c.name === ONE_CASE);
  t.equal(ran?.verdict, 'passed');
  t.notOk(ran?.requirementsUnjudged, 'its requirements were judged');

  // --build-dir: a tree's O= build as 2.6.20 leaves it (arch/x86_64/boot/bzImage, .config).
  const buildDir = await tmp('build-dir');
  await mkdir(join(buildDir, 'arch', 'x86_64', 'boot'), { recursive: true });
  await copyFile(join(without, 'bzImage'), join(buildDir, 'arch', 'x86_64', 'boot', 'bzImage'));
  await copyFile(join(without, 'config'), join(buildDir, '.config'));
  const fromDir = await tmp('build-dir-run');
  const d = await ktrial(['run', SMOKE20, '--build-dir', buildDir, '--only', ONE_CASE, '--out', fromDir, '-q']);
  t.equal(d.code, 0, d.stderr.slice(-400));
  const dres = await results(fromDir);
  t.equal(dres.kernel.given, 'build-dir');
  t.equal(dres.kernel.configFrom, 'build-dir');
  t.equal(dres.kernel.bzImage, sha256(await readFile(join(without, 'bzImage'))), 'the build directory\'s bzImage was booted');
  t.equal(dres.kernel.config, sha256(await readFile(join(without, 'config'))), 'with its .config');
  t.equal(dres.cases.find((c) => c.name === ONE_CASE)?.verdict, 'passed');
  t.notOk(dres.phases.some((p) => ['source', 'patch', 'config', 'build'].includes(p.phase)), 'nothing was built');
  t.match(dres.rerun!.command.join(' '), `--build-dir ${buildDir}`, 're-run line repeats --build-dir');
});

t.test('--kernel and --build-dir refuse the options that shape a build, before anything runs', async (t) => {
  const bzImage = join(await tmp('refuse'), 'bzImage');
  const refusals = [
    ...[['--source', '/tmp/linux'], ['--cc', 'gcc-12'], ['--kconfig-add', 'CONFIG_X=y'], ['--timeout-build', '60']].map((option) => [['--kernel', bzImage], option]),
    [['--build-dir', dirname(bzImage)], ['--source', '/tmp/linux']],
  ];
  for (const [given, option] of refusals) {
    const r = await ktrial(['run', SMOKE61, ...given!, ...option!]);
    t.equal(r.code, 2, `${given![0]} with ${option![0]} is bad input`);
    t.match(r.stderr, `${option![0]} shapes a kernel build, and ${given![0]} skips the build`);
  }
  const both = await ktrial(['run', SMOKE61, '--kernel', bzImage, '--build-dir', dirname(bzImage)]);
  t.equal(both.code, 2);
  t.match(both.stderr, /--kernel and --build-dir both name the kernel/);
});

t.test('--config FILE is the base of a build: its options stay, the trial\'s fragments still apply', { skip: await sourceSkip('smoke-2.6.20') }, async (t) => {
  // The base: a full .config with options the smoke trial never asks for (debug information,
  // the embedded config), from a ktrial build; the same file then builds with no change.
  const debug = ['CONFIG_IKCONFIG=y', 'CONFIG_IKCONFIG_PROC=y', 'CONFIG_DEBUG_KERNEL=y', 'CONFIG_DEBUG_INFO=y'];
  const first = await tmp('config-base-src');
  t.equal((await ktrial(['build', SMOKE20, ...debug.flatMap((o) => ['--kconfig-add', o]), '--out', first, '-q'])).code, 0);
  const base = join(first, 'config');
  const out = await tmp('config-base');
  const b = await ktrial(['build', SMOKE20, '--config', base, '--out', out, '-q']);
  t.equal(b.code, 0, b.stderr.slice(-400));
  const final = await readFile(join(out, 'config'), 'utf8');
  for (const o of debug) t.match(final, new RegExp(`^${o}$`, 'm'), `${o} from the base file`);
  const trial = await readFile(SMOKE20, 'utf8');
  const fragments = [...trial.matchAll(/^\s+- (\.\.\/fragments\/\S+\.config)/gm)].map((m) => join(repoPath('configs', 'trials'), m[1]!));
  t.ok(fragments.length > 0, 'the trial has fragments');
  for (const f of fragments) {
    for (const l of (await readFile(f, 'utf8')).split('\n').filter((x) => /^CONFIG_\w+=y$/.test(x))) t.match(final, new RegExp(`^${l}$`, 'm'), `${l} (${f.split('/').pop()})`);
  }
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { config: { base: string } };
  // By content: a later build from an equal file elsewhere is the same cached kernel.
  t.match(manifest.config.base, `(sha256 ${sha256(await readFile(base))})`, 'the manifest names the base file by its sha256');
});
