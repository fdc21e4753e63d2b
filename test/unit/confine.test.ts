// What a guest can reach, below the VM: the user-network option (restricted unless
// outbound), who chooses the network (--network over the trial over a suite, confined by
// default), a bad value refused with its file and line, the summary line, the command
// that starts QEMU (setpriv dropping to the QEMU user), and files reaching QEMU as
// descriptors. The expected text is QEMU's and setpriv's documented syntax, written here.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planRun, runNetwork } from '../../harness/runplan.js';
import { loadSuite } from '../../harness/scenarios/index.js';
import { netdevOption, qemuUser, sandboxArgs, SANDBOX_OPTIONS } from '../../harness/vm/confine.js';
import { qemuCommand, startQemu } from '../../harness/vm/qemu.js';
import { confinementLine } from '../../harness/report/summary.js';
import { KtrialError } from '../../harness/common/errors.js';

async function scratch(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'ktrial-confine-'));
}

async function trialFile(dir: string, extra: string): Promise<string> {
  await mkdir(join(dir, 'linux'), { recursive: true });
  const file = join(dir, 'net.yaml');
  await writeFile(file, `name: net\nsource:\n  path: linux\nconfig:\n  base: tinyconfig\n${extra}`);
  return file;
}

async function suiteFile(dir: string, name: string, extra: string): Promise<string> {
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `name: ${name}\n${extra}cases:\n  - name: one\n    steps:\n      - sh: "true"\n`);
  return file;
}

t.test('the user network is restricted unless outbound; SSH stays forwarded from loopback', async (t) => {
  t.equal(netdevOption(2222, 'confined'), 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:2222-:22');
  t.equal(netdevOption(2222, 'outbound'), 'user,id=net0,restrict=off,hostfwd=tcp:127.0.0.1:2222-:22');
  t.same(sandboxArgs(true), ['-sandbox', 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny']);
  t.equal(SANDBOX_OPTIONS, 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny');
  t.same(sandboxArgs(false), []);
});

t.test('who chooses the network: --network, then the trial, then a suite, else confined', async (t) => {
  const dir = await scratch();
  const out = join(dir, 'out');
  const plain = await trialFile(join(dir, 'a'), '');
  const plan = await planRun(plain, { out });
  t.same(runNetwork(plan, []), { access: 'confined', by: 'the default' }, 'confined by default');
  const asks = await loadSuite(await suiteFile(dir, 'fetches', 'network: outbound\n'));
  const quiet = await loadSuite(await suiteFile(dir, 'quiet', ''));
  t.equal(quiet.network, undefined, 'a suite that says nothing asks for nothing');
  const bySuite = runNetwork(plan, [quiet, asks]);
  t.equal(bySuite.access, 'outbound', 'a suite asking for outbound gets it');
  t.match(bySuite.by, /^suite fetches \(.*fetches\.yaml:2(:\d+)?\)$/, 'and the results say which suite, where');
  const flagged = await planRun(plain, { out, network: 'confined' });
  t.same(runNetwork(flagged, [asks]), { access: 'confined', by: '--network confined' }, '--network confined wins over the suite');
  t.same(flagged.rerun.options, ['--network', 'confined'], 'the re-run line repeats --network');
  const trialSays = await planRun(await trialFile(join(dir, 'b'), 'guest:\n  network: outbound\n'), { out });
  const byTrial = runNetwork(trialSays, [quiet]);
  t.equal(byTrial.access, 'outbound');
  t.match(byTrial.by, /^the trial \(.*net\.yaml:7/, "the trial's guest.network, with its line");
});

t.test('a bad network value is refused with its file and line', async (t) => {
  const dir = await scratch();
  const out = join(dir, 'out');
  await t.rejects(planRun(await trialFile(dir, ''), { out, network: 'open' }), { message: /--network takes confined or outbound, got "open"/ });
  const badTrial = await trialFile(join(dir, 't'), 'guest:\n  network: everywhere\n');
  const e1 = await planRun(badTrial, { out }).catch((e: unknown) => e);
  t.ok(e1 instanceof KtrialError, 'bad input');
  t.match((e1 as Error).message, /net\.yaml:7:12: "everywhere" is not one of confined, outbound/, 'the trial file, line and the values it takes');
  const badSuite = await suiteFile(dir, 'bad', 'network: anywhere\n');
  const e2 = await loadSuite(badSuite).catch((e: unknown) => e);
  t.ok(e2 instanceof KtrialError);
  t.match((e2 as Error).message, /bad\.yaml:2:\d+: "anywhere" is not one of confined, outbound/, 'the suite file, line and the values it takes');
});

t.test('the summary says what the guest could reach, loudest when outbound', async (t) => {
  t.equal(confinementLine({ network: 'confined', sandbox: true, user: 'ktrial-qemu (uid 999)', networkBy: 'the default' }), 'guest: network confined (nothing but its forwarded SSH port); QEMU in its seccomp sandbox, as ktrial-qemu (uid 999)');
  t.match(confinementLine({ network: 'outbound', sandbox: false, user: 'the invoking user (uid 1000)', networkBy: 'suite x (x.yaml:2)' }), /^guest: network OUTBOUND allowed \(suite x \(x\.yaml:2\) asked for it\); QEMU without a seccomp sandbox/);
});

t.test('QEMU is started through setpriv, as the QEMU user when there is one', async (t) => {
  const user = { name: 'ktrial-qemu', uid: 999, gid: 998, groups: [] };
  t.same(qemuCommand('qemu-system-x86_64', ['-m', '64'], user), ['setpriv', ['--reuid', '999', '--regid', '998', '--clear-groups', '--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', '-m', '64']]);
  t.same(qemuCommand('q', [], { ...user, groups: [106] })[1].slice(0, 6), ['--reuid', '999', '--regid', '998', '--groups', '106'], "kvm's group is kept");
  t.same(qemuCommand('q', ['-x'], undefined), ['setpriv', ['--pdeathsig', 'KILL', '--', 'q', '-x']], 'no user: only the parent-death signal');
});

t.test('the files QEMU reads arrive as descriptors 3, 4, ... that the started program can read', async (t) => {
  const dir = await scratch();
  await writeFile(join(dir, 'a'), 'first\n');
  await writeFile(join(dir, 'b'), 'second\n');
  let out = '';
  // /bin/sh stands in for QEMU: the descriptors are the same whatever program is started.
  const q = await startQemu('/bin/sh', ['-c', 'cat /dev/fd/3 /dev/fd/4'], (d) => (out += d.toString()), { files: [join(dir, 'a'), join(dir, 'b')] });
  const end = await q.exited;
  t.equal(end.code, 0);
  t.equal(out, 'first\nsecond\n');
  await t.rejects(startQemu('/bin/sh', ['-c', 'true'], () => {}, { files: [join(dir, 'missing')] }), { code: 'ENOENT' }, 'a missing file stops the start');
});

const asRoot = process.getuid?.() === 0;
const qemuAs = asRoot ? await qemuUser() : undefined;
const notAsOwnUser = !asRoot ? 'needs root (QEMU runs as its own user only when ktrial runs as root)' : !qemuAs ? 'none of the QEMU users exists: npx ktrial setup makes ktrial-qemu' : false;

t.test('as root, QEMU runs as its own user: it reads the files handed to it, nothing of ours by path', { skip: notAsOwnUser }, async (t) => {
  const user = qemuAs!;
  const dir = await scratch();
  await chmod(dir, 0o700);
  const file = join(dir, 'bzImage');
  await writeFile(file, 'kernel\n', { mode: 0o644 });
  let out = '';
  const q = await startQemu('/bin/sh', ['-c', `id -u; cat /dev/fd/3; cat ${file} 2>/dev/null || echo refused`], (d) => (out += d.toString()), { files: [file], user });
  await q.exited;
  t.equal(out, `${user.uid}\nkernel\nrefused\n`, 'its own uid; the file handed to it is readable, the same file by its path (in a private directory) is not');
  await writeFile(join(dir, 'private'), 'secret\n', { mode: 0o600 });
  await t.rejects(startQemu('/bin/sh', ['-c', 'true'], () => {}, { files: [join(dir, 'private')], user }), { message: /QEMU runs as .* and cannot read .*private \(mode 0600\)/ }, 'a file others may not read is refused before QEMU starts, by name');
  const caps = await new Promise<string>((resolve) => {
    const [cmd, argv] = qemuCommand('/bin/sh', ['-c', 'grep ^CapEff /proc/self/status'], user);
    const c = spawn(cmd, argv);
    let s = '';
    c.stdout.on('data', (d: Buffer) => (s += d.toString()));
    c.on('close', () => resolve(s));
  });
  t.match(caps, /^CapEff:\s+0+$/m, 'no capabilities left');
});
