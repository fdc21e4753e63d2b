// What a guest can reach, for real: listeners on the host's 127.0.0.1 (which the guest
// would reach through QEMU's user network at 10.0.2.2) and 127.0.0.2 count the connections
// they get. A run is confined unless something asks for outbound: the confined guest's SSH
// steps pass, its case that reaches for the host fails and no listener sees anything; with
// --network outbound, or a suite saying network: outbound, that case passes and the
// 127.0.0.1 listener sees it (127.0.0.2 stays out of reach: in the guest it is its own). While a guest runs, its QEMU is looked at
// in /proc: in its seccomp sandbox, and as an unprivileged user when the tests run as root.
// The 6.1 smoke kernel is the one every integration test shares; 2.6.20 is the oldest era.
import t, { type Test } from 'tap';
import { execa } from 'execa';
import { readFile, mkdtemp } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { alive } from '../helpers/proc.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const CONFINED = repoPath('test', 'fixtures', 'scenarios', 'guest-network.yaml');
const ASKS_OUTBOUND = repoPath('test', 'fixtures', 'scenarios', 'guest-network-outbound.yaml');
const trial = (name: string) => repoPath('configs', 'trials', `${name}.yaml`);
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-confine-${name}-`));
const results = async (out: string) => JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;

/** A one-line HTTP service on a loopback address that counts the connections it is offered. */
async function listener(address = '127.0.0.1'): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let n = 0;
  const open = new Set<Socket>();
  const server: Server = createServer((sock) => {
    n++;
    open.add(sock);
    sock.on('close', () => open.delete(sock));
    sock.on('error', () => {});
    sock.end('HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nreached-the-host\n');
  });
  await new Promise<void>((resolve) => server.listen(0, address, () => resolve()));
  return { port: (server.address() as AddressInfo).port, connections: () => n, close: () => new Promise((r) => {
      for (const sock of open) sock.destroy();
      server.close(() => r());
    }) };
}

const verdict = (r: RunResults, name: string) => r.cases.find((c) => c.kind === 'case' && c.name === name)?.verdict;
const REACH = "the host's loopback answers";

/** Both listeners, and the --var words that tell the suite their ports. */
async function listeners(t: Test): Promise<{ one: Awaited<ReturnType<typeof listener>>; two: Awaited<ReturnType<typeof listener>>; vars: string[] }> {
  const one = await listener('127.0.0.1');
  const two = await listener('127.0.0.2');
  t.teardown(async () => {
    await one.close();
    await two.close();
  });
  return { one, two, vars: ['--var', `port=${one.port}`, '--var', `port2=${two.port}`] };
}

for (const [name, skipFor] of [['smoke-debian-6.1', false], ['smoke-2.6.20', await sourceSkip('smoke-2.6.20')]] as const) {
  t.test(`${name}: confined by default, the host's loopback is out of reach`, { skip: skipFor }, async (t) => {
    const l = await listeners(t);
    const out = await tmp(`${name}-confined`);
    const r = await ktrial(['run', trial(name), '--suite', CONFINED, ...l.vars, '--out', out]);
    const res = await results(out);
    t.equal(r.code, 1, 'a case is not as expected: the guest could not reach the host');
    t.equal(verdict(res, 'the guest answers over SSH'), 'passed', 'the SSH steps work');
    t.equal(verdict(res, "127.0.0.2 in the guest is the guest's own"), 'passed');
    t.equal(verdict(res, REACH), 'failed', 'the host is out of reach');
    t.equal(l.one.connections(), 0, 'the listener on 127.0.0.1 saw no connection');
    t.equal(l.two.connections(), 0, 'the listener on 127.0.0.2 saw no connection');
    t.equal(res.confinement?.network, 'confined');
    t.equal(res.confinement?.networkBy, 'the default');
    t.equal(res.confinement?.sandbox, true, 'QEMU ran in its seccomp sandbox');
    if (process.getuid?.() === 0) t.match(res.confinement?.user, /^(ktrial-qemu|nobody) \(uid [1-9]\d*\)$/, 'as root, QEMU ran as its own user');
    t.match(r.stdout, /^guest: network confined/m, 'the summary says so');
    t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
  });
}

t.test('--network outbound: the guest reaches the host, and the results say who allowed it', async (t) => {
  const l = await listeners(t);
  const out = await tmp('flag');
  const r = await ktrial(['run', trial('smoke-debian-6.1'), '--suite', CONFINED, ...l.vars, '--network', 'outbound', '--out', out]);
  const res = await results(out);
  t.equal(r.code, 0, r.code === 0 ? 'every case as expected' : r.stderr.slice(-1500));
  t.equal(verdict(res, REACH), 'passed');
  t.ok(l.one.connections() >= 1, `the 127.0.0.1 listener saw ${l.one.connections()} connection(s)`);
  t.equal(l.two.connections(), 0, 'the 127.0.0.2 one none: the guest has no way to it');
  t.same([res.confinement?.network, res.confinement?.networkBy], ['outbound', '--network outbound']);
  t.match(r.stdout, /^guest: network OUTBOUND allowed \(--network outbound asked for it\)/m);
  t.match(res.rerun?.command.join(' '), / --network outbound/, 'the re-run line keeps it');
});

t.test("a suite's network: outbound is honoured and named", async (t) => {
  const l = await listeners(t);
  const out = await tmp('suite');
  const r = await ktrial(['run', trial('smoke-debian-6.1'), '--suite', ASKS_OUTBOUND, ...l.vars, '--out', out]);
  const res = await results(out);
  t.equal(r.code, 0, r.code === 0 ? 'every case as expected' : r.stderr.slice(-1500));
  t.ok(l.one.connections() >= 1, 'the 127.0.0.1 listener saw the guest');
  t.equal(res.confinement?.network, 'outbound');
  t.match(res.confinement?.networkBy, /^suite guest-network-outbound \(.*guest-network-outbound\.yaml:5/);
});

/** The Uid and Seccomp lines of a process's status. */
async function status(pid: number): Promise<{ uid: number; seccomp: number }> {
  const text = await readFile(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(/^Uid:\s+(\d+)/m.exec(text)?.[1]), seccomp: Number(/^Seccomp:\s+(\d+)/m.exec(text)?.[1]) };
}

t.test('a running guest: its QEMU is in seccomp filter mode, and not root when ktrial is', async (t) => {
  const out = await tmp('proc');
  const run = execa('node', [repoPath('bin', 'ktrial.js'), 'boot', trial('smoke-debian-6.1'), '--out', out, '--', 'sh', '-c', 'sleep 8'], { reject: false });
  // Looked at once the guest is up: QEMU turns its sandbox on after it starts.
  const up = new Promise<void>((resolve) => {
    let text = '';
    run.stderr?.on('data', (d: Buffer) => {
      text += d.toString();
      if (/guest up/.test(text)) resolve();
    });
  });
  let seen: { pid: number; uid: number; seccomp: number } | undefined;
  if ((await Promise.race([up.then(() => 'up' as const), run.then(() => 'ended' as const)])) === 'up') {
    const kids = await execa('pgrep', ['-P', String(run.pid), 'qemu-system'], { reject: false });
    const pid = Number(kids.stdout.split('\n')[0]);
    if (pid) seen = { pid, ...(await status(pid)) };
  }
  const end = await run;
  t.equal(end.exitCode, 0, String(end.stderr));
  t.ok(seen, 'the guest QEMU was found while it ran');
  t.equal(seen?.seccomp, 2, 'Seccomp: 2 (filter mode: the sandbox is on)');
  if (process.getuid?.() === 0) t.not(seen?.uid, 0, `uid ${seen?.uid}: not root`);
  else t.equal(seen?.uid, process.getuid?.(), 'the invoking user');
  t.notOk(seen && alive(seen.pid), 'QEMU is gone after the boot command');
});
