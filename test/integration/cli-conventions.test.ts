// The command line's conventions: --version, COMMAND --help, usage on stderr with exit 2
// for wrong arguments, doctor's columns and --json, and run's -q, -v and --json.
import t from 'tap';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const ONE_CASE = 'a hostname set in a new UTS namespace is not seen outside';
const PROGRESS_LINE = /^\[ktrial \d\d:\d\d\] /m;

t.test('--version gives the package version and the checkout\'s commit', async (t) => {
  const pkg = JSON.parse(await readFile(repoPath('package.json'), 'utf8')) as { version: string };
  const head = (await execa('git', ['-C', repoPath(), 'rev-parse', 'HEAD'])).stdout.trim();
  const r = await ktrial(['--version']);
  t.equal(r.code, 0);
  t.match(r.stdout, new RegExp(`^ktrial ${pkg.version.replace(/\./g, '\\.')} \\(${head.slice(0, 12)}\\b`));
});

t.test('COMMAND --help prints that command\'s usage on stdout and exits 0, for every command', async (t) => {
  // Each command with one option of its own and one that belongs to another command.
  const commands = [
    ['run', '--repeat N', '--shell'],
    ['boot', '--copy SRC:DEST', '--repeat'],
    ['build', '--kconfig-add', '--console'],
    ['compare', '--markdown', '--source'],
    ['merge', '--out DIR', '--kconfig-add'],
    ['list', '--only GLOB', '--repeat'],
    ['cache', '--older-than DAYS', '--only'],
    ['lava', '--artifact-url BASE', '--repeat'],
    ['doctor', '--json', '--source'],
    ['setup', 'as root', '--json'],
  ] as const;
  const top = await ktrial(['--help']);
  const section = top.stdout.split('\ncommands:\n')[1]!.split('\n\n')[0]!;
  const listed = [...section.matchAll(/^ {2}([a-z]+)\b/gm)].map((m) => m[1]!);
  t.same([...listed].sort(), commands.map(([c]) => c).sort(), 'the commands ktrial --help lists are the ones checked here');
  for (const [command, own, foreign] of commands) {
    const r = await ktrial([command, '--help']);
    t.equal(r.code, 0, `${command} --help exits 0`);
    t.match(r.stdout, new RegExp(`^usage: ktrial ${command}\\b`), `it starts with ${command}'s synopsis`);
    t.ok(r.stdout.includes(own), `${command}'s usage has ${own}`);
    t.notOk(r.stdout.includes(foreign), `and not ${foreign}, which belongs to another command`);
    t.equal(r.stderr, '', 'nothing on stderr');
  }
});

t.test('wrong arguments: a message and the usage on stderr, exit 2, nothing on stdout', async (t) => {
  for (const [args, message] of [
    [['no-such-command'], /unknown command "no-such-command"/],
    [[], /no command given/],
    [['run', SMOKE61, '--no-such-option'], /no-such-option/],
    [['run'], /run takes one trial file/],
    [['build', SMOKE61, SMOKE61], /build takes one trial file, got 2 arguments/],
    [['boot', SMOKE61], /boot needs --shell or -- COMMAND/],
    [['run', SMOKE61, '-q', '-v'], /-q and -v contradict/],
  ] as const) {
    const r = await ktrial([...args]);
    t.equal(r.code, 2, `ktrial ${args.join(' ')} exits 2`);
    t.match(r.stderr, message);
    t.match(r.stderr, /^usage: ktrial /m, 'the usage follows the message');
    t.equal(r.stdout, '', 'stdout is empty');
  }
});

t.test('doctor aligns its columns, long file paths included, and --json lists each tool', async (t) => {
  const r = await ktrial(['doctor']);
  const rows = r.stdout.split('\n\n')[0]!.split('\n');
  t.ok(rows.some((l) => l.includes('/usr/include/openssl/ssl.h')), 'the long path is listed');
  // Where each column starts, read from the text: a cell ends at two or more spaces.
  const starts = (l: string) => [...l.matchAll(/(?<= {2,})\S/g)].map((m) => m.index);
  t.equal(new Set(rows.map((l) => JSON.stringify(starts(l)))).size, 1, 'every row\'s columns start at the same offsets');

  const j = await ktrial(['doctor', '--json']);
  t.equal(j.code, r.code, 'the same exit code as the text form');
  const tools = JSON.parse(j.stdout) as { name: string; package: string; purpose: string; present: boolean; path: string | null }[];
  t.equal(tools.length, rows.length, 'one entry per row of the text form');
  for (const tool of tools) t.same(Object.keys(tool).sort(), ['name', 'package', 'path', 'present', 'purpose']);
  const tar = tools.find((x) => x.name === 'tar');
  const tarAt = (await execa('sh', ['-c', 'command -v tar'], { reject: false })).stdout.trim();
  t.same([tar?.present, tar?.path], [tarAt !== '', tarAt || null], 'tar is present at the path the shell finds');
});

t.test('run -q --json: results.json on stdout, the summary on stderr, no progress', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-conventions-'));
  const r = await ktrial(['run', SMOKE61, '-q', '--json', '--only', ONE_CASE, '--out', out]);
  if (!t.equal(r.code, 0, 'the run passes')) t.comment(r.stderr);
  const printed = JSON.parse(r.stdout) as RunResults;
  t.same(printed, JSON.parse(await readFile(join(out, 'results.json'), 'utf8')), 'stdout is the results.json the run wrote');
  t.ok(printed.cases.some((c) => c.name === ONE_CASE && c.verdict === 'passed'), 'the selected case passed');
  t.notMatch(r.stderr, PROGRESS_LINE, 'no progress line');
  t.match(r.stderr, new RegExp(`${ONE_CASE}`), 'the summary names the case');

  const normal = await ktrial(['run', SMOKE61, '--only', ONE_CASE, '--out', out]);
  const verbose = await ktrial(['run', SMOKE61, '-v', '--only', ONE_CASE, '--out', out]);
  t.match(normal.stderr, PROGRESS_LINE, 'without -q there is progress');
  t.notMatch(normal.stderr, /scenarios namespaces: last: /, 'a phase\'s status is not printed as it changes without -v');
  t.match(verbose.stderr, new RegExp(`scenarios namespaces: last: ${ONE_CASE} passed`), '-v prints the status of the scenarios phase as it changes');
});

t.test('list --only names exactly the cases run --only runs', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-conventions-'));
  const glob = '*UTS*';
  const listed = await ktrial(['list', SMOKE61, '--only', glob]);
  t.equal(listed.code, 0);
  const r = await ktrial(['run', SMOKE61, '-q', '--only', glob, '--out', out]);
  if (!t.equal(r.code, 0, 'the run passes')) t.comment(r.stderr);
  const results = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  const ran = results.cases.filter((c) => c.notRun?.cause !== 'filtered').map((c) => `${c.suite}/${c.name}`);
  t.ok(ran.length > 0, 'the glob selects some case');
  t.same(listed.stdout.split('\n').filter(Boolean), ran);
});
