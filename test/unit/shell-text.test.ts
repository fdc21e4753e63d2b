// Every place where a value from a suite, a trial, the command line or the guest ends up in
// shell text, fed hostile values (quotes, $(...), backticks, newlines, ;, globs, a leading
// dash): each must reach its destination as the very words it was, and nothing in it may
// run. The places: the re-run line, a step's agent argv over SSH, `ktrial boot -- WORDS`,
// the guest's session wrapper around every command and the upload command; the LAVA plan
// (ktrial-plan.sh), with its runner's filling in of captured values, is lava-plan.test.ts's.
// Each line is run by the host's /bin/sh, which reads POSIX shell as the guest's does; a
// canary file shows whether anything ran that should not have. A case name with a newline,
// which would break every report's line, is refused at load.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { shellLine } from '../../harness/common/shell.js';
import { commandLine as agentCommandLine } from '../../harness/scenarios/agent.js';
import { commandLine as bootCommandLine } from '../../harness/vm/interactive.js';
import { copyCommand, inOwnSession } from '../../harness/vm/guest.js';
import { toSummary, type RunResults } from '../../harness/report/index.js';
import { loadSuite } from '../../harness/scenarios/index.js';
import { KtrialError } from '../../harness/common/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ktrial-shell-text-'));
const CANARY = join(dir, 'canary');
const HOSTILE = [
  `$(touch ${CANARY})`,
  `\`touch ${CANARY}\``,
  `it's; touch ${CANARY}`,
  `"double" \\ back\\slash`,
  'two\nlines',
  'trailing newline\n',
  '*',
  '-n',
  '',
  '#not a comment',
  '~root',
  '&& || | > <',
  '${HOME}',
];

/** The words `line` stands for, as sh reads it (its first word included). */
function wordsOf(line: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `set -- ${line}\nprintf '%s\\0' "$@"`], { cwd: dir });
  return out.toString().split('\0').slice(0, -1);
}

t.afterEach(() => {
  if (existsSync(CANARY)) throw new Error('a hostile value ran as a command');
});

t.test('the re-run line: every word as given', async (t) => {
  const command = ['npx', 'ktrial', 'run', join(dir, 'a trial.yaml'), ...HOSTILE.flatMap((v) => ['--var', `x=${v}`]), '--only', "it's *"];
  const r: RunResults = { trial: 't', kernel: {}, phases: [], cases: [], status: 'ok', rerun: { command, ktrial: 'x' } };
  const line = /^re-run: (.*)   \(ktrial x\)$/ms.exec(toSummary(r))?.[1];
  t.ok(line, 'the summary has a re-run line');
  t.same(wordsOf(line!), command);
  t.notOk(existsSync(CANARY));
});

t.test("a step's agent argv reaches the guest's shell as its words", async (t) => {
  const argv = ['/usr/bin/ktrial-agent', '--tag', 's.1', 'sethostname', ...HOSTILE];
  t.same(wordsOf(agentCommandLine({ argv })), argv);
  t.equal(agentCommandLine({ script: 'echo "$HOME"' }), 'echo "$HOME"', 'a sh step is shell text by design, unchanged');
});

t.test('`ktrial boot -- WORDS`: several words stay words; one word is a command line by design', async (t) => {
  const argv = ['printf', '%s\\n', ...HOSTILE];
  t.same(wordsOf(bootCommandLine(argv)), argv);
  t.equal(bootCommandLine(['ls -l | wc -l']), 'ls -l | wc -l');
});

t.test('the session wrapper hands a command to the inner shell once, literally', async (t) => {
  const pidFile = join(dir, 'exec.1.pid');
  for (const v of HOSTILE) {
    const cmd = shellLine(['printf', '%s', v]);
    const out = execFileSync('/bin/sh', ['-c', inOwnSession(cmd, pidFile)], { cwd: dir }).toString();
    t.equal(out, v, JSON.stringify(v));
  }
  // A script with its own substitution is evaluated once: what it prints is not run again.
  const once = execFileSync('/bin/sh', ['-c', inOwnSession(`echo '$(touch ${CANARY})'`, pidFile)]).toString();
  t.equal(once, `$(touch ${CANARY})\n`);
  t.notOk(existsSync(pidFile), 'the pid file is removed');
});

t.test('the upload command writes to exactly the path named', async (t) => {
  for (const [i, v] of HOSTILE.filter((x) => x && !x.includes('/') && x !== '*').entries()) {
    const path = join(dir, `up ${i}`, `${v}.file`);
    execFileSync('/bin/sh', ['-c', copyCommand(path, 0o640)], { input: `content ${i}`, cwd: dir });
    t.equal(readFileSync(path, 'utf8'), `content ${i}`, JSON.stringify(path));
  }
});

t.test('a case or step name that would break a report line is refused at load, with file:line', async (t) => {
  const file = join(dir, 'two-line-name.yaml');
  writeFileSync(file, 'name: s\ncases:\n  - name: "first\\nsecond"\n    steps:\n      - sh: "true"\n');
  const e = await loadSuite(file).catch((x: unknown) => x);
  t.ok(e instanceof KtrialError, 'bad input');
  t.match((e as Error).message, new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:3:\\d+: "first\\\\nsecond" does not match`), 'the file and line of the name, the newline spelled out');
});
