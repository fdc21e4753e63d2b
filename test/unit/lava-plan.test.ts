// The in-guest plan run by this host's /bin/sh, against a stand-in agent that logs the
// arguments it gets and prints what the agent would: case names, variables, step arguments
// and a captured value full of quotes, $(...), backticks, ";" and newlines reach the agent
// as the one argument each is; the plan sends the very commands the SSH runner sends for
// the same program; and the host judges the plan's records as it judges the SSH run.
import t from 'tap';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { judgeSuite, parseLavaLog } from '../../harness/lava/ingest.js';
import { planScript, planSuite } from '../../harness/lava/plan.js';
import { parseSuite } from '../../harness/scenarios/load.js';
import { compile } from '../../harness/scenarios/program.js';
import { runProgram } from '../../harness/scenarios/run.js';
import type { CaseResult, GuestExec } from '../../harness/scenarios/types.js';

const dir = mkdtempSync(join(tmpdir(), 'ktrial-plan-run-'));
t.teardown(() => rmSync(dir, { recursive: true, force: true }));
const calls = join(dir, 'calls');
/** Made by any command substitution or backtick that the shell ran. */
const pwned = join(dir, 'pwned');

// A value each of the shell's special characters would break if it were read as shell text.
const hostile = (what: string) => `${what} it's "q" $(touch ${pwned}) \`touch ${pwned}\` ; touch ${pwned} \\ $HOME\nline two`;
const captured = hostile('captured');
// A case name stays on one line (reports print it so; a newline is refused at load).
const hostileName = hostile('case').replace('\n', ' ');

// The stand-in agent: one file of its arguments, each ended by a NUL, per call.
const agent = join(dir, 'ktrial-agent');
writeFileSync(
  agent,
  `#!/bin/sh
n=$(ls ${calls} | wc -l)
printf '%s\\000' "$@" > ${calls}/$((n + 1))
for last do :; done
case $1 in
--version) echo '{"agent":"ktrial-agent","protocol":1}' ;;
reap) echo '{"action":"reap","index":1,"stage":"action","ok":true,"killed":[]}' ;;
*) if [ "$last" = gethostname ]; then
	cat <<'EOF'
${JSON.stringify({ action: 'gethostname', index: 1, stage: 'action', ok: true, output: `${captured}\n` })}
EOF
else echo '{"action":"x","index":1,"stage":"action","ok":true}'; fi ;;
esac
`,
);
chmodSync(agent, 0o755);
// dmesg would set this host's console log level; lava-test-case is the lab's.
const bin = join(dir, 'bin');
mkdirSync(bin);
writeFileSync(join(bin, 'dmesg'), '#!/bin/sh\n');
writeFileSync(join(bin, 'lava-test-case'), '#!/bin/sh\nexit 1\n');
for (const f of ['dmesg', 'lava-test-case']) chmodSync(join(bin, f), 0o755);

const yq = (s: string) => JSON.stringify(s);
const suite = parseSuite(
  `name: hostile
vars:
  v: ${yq(hostile('var'))}
setup:
  - gethostname:
    capture: {host: output}
cases:
  - name: ${yq(hostileName)}
    steps:
      - write: {path: ${yq(hostile('arg'))}, data: "\${v}"}
      - write: {path: /x, data: "\${case}"}
      - sethostname: "\${host}"
      - gethostname:
        expect: {output: "\${host}"}
      - sh: "printf '%s' plain"
        expect: {output: plain}
    cleanup:
      - sethostname: "\${host}"
`,
  'hostile.yaml',
);
const program = compile(suite, { agentPath: agent });

/** Every call of the agent since the last, as its arguments (without the agent's path). */
function takeCalls(): string[][] {
  const files = readdirSync(calls).map(Number).sort((a, b) => a - b);
  const out = files.map((f) => readFileSync(join(calls, String(f)), 'utf8').split('\0').slice(0, -1));
  for (const f of files) rmSync(join(calls, String(f)));
  return out;
}

/** The guest over SSH: each command through a shell, as dropbear runs it. */
const sshGuest: GuestExec & { sent: string[] } = {
  sent: [],
  exec(command, { timeoutMs }) {
    this.sent.push(command);
    return new Promise((resolve) => {
      const started = Date.now();
      execFile('/bin/sh', ['-c', command], { timeout: timeoutMs }, (err, stdout, stderr) => {
        const exitCode = err ? (typeof err.code === 'number' ? err.code : 128) : 0;
        resolve({ exitCode, stdout, stderr, durationMs: Date.now() - started });
      });
    });
  },
  kernelCrash: () => undefined,
};

const verdicts = (rs: CaseResult[]) => rs.map((r) => [r.name, r.verdict, r.reason]);

mkdirSync(calls);
const overSsh = await runProgram(program, sshGuest);
const sshCalls = takeCalls();

const plan = planSuite(program);
writeFileSync(join(dir, 'plan.sh'), planScript([plan]));
const consoleText = await new Promise<string>((resolve, reject) =>
  execFile('/bin/sh', [join(dir, 'plan.sh'), '1'], { env: { ...process.env, KT: join(dir, 'kt'), PATH: `${bin}:${process.env.PATH}` } }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout))),
);
const planCalls = takeCalls();

t.test('hostile values reach the agent as one literal argument each, over SSH and in the plan', async (t) => {
  const [check, setup, arg, caseName, sethost, gethost, cleanup, reapCase, reapSuite] = planCalls;
  t.same(check, ['--version']);
  t.same(setup, ['--tag', 'hostile.setup', 'gethostname']);
  t.same(arg, ['--tag', 'hostile.1', 'write', hostile('arg'), hostile('var')], 'a step argument and a variable');
  t.same(caseName, ['--tag', 'hostile.1', 'write', '/x', hostileName], 'the case name');
  t.same(sethost, ['--tag', 'hostile.1', 'sethostname', captured], 'the captured value, without its newline');
  t.same(gethost, ['--tag', 'hostile.1', 'gethostname']);
  t.same(cleanup, ['--tag', 'hostile.1', 'sethostname', captured]);
  t.same([reapCase, reapSuite], [['reap', 'hostile.1'], ['reap']]);
  t.equal(planCalls.length, 9);
  t.same(sshCalls, planCalls, 'the SSH runner gave the agent the same arguments');
  t.notOk(existsSync(pwned), 'no shell ran a part of a value');
});

t.test('the plan runs the program the SSH runner runs, and its records are judged alike', async (t) => {
  t.same(verdicts(overSsh), [[hostileName, 'passed', undefined]], 'every step as expected over SSH, the captured value matched');
  const records = parseLavaLog(consoleText.split('\n').map((msg) => JSON.stringify({ lvl: 'target', msg })).join('\n')).suites.get('hostile');
  t.same(records?.records.map((r) => r.command), sshGuest.sent, 'the plan ran the commands the SSH runner sent, in its order');
  t.match(consoleText, /^KTRESULT 1_case-it-s-q-touch-\S+ pass$/m, 'the guest judged the case as passed');
  t.same(verdicts(await judgeSuite(plan, records, {})), verdicts(overSsh), 'the host judges the records as it judged the SSH run');
});
