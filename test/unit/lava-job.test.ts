// The LAVA job and the in-guest plan as written: the job's shape (lava-run --validate itself
// checks every job in the integration test), and a plan that the shell reads, that covers
// every case and keeps the SSH runner's commands.
import t from 'tap';
import { load } from 'js-yaml';
import { execFileSync } from 'node:child_process';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { repoPath } from '../../harness/common/paths.js';
import { jobDefinition, deviceDictionary } from '../../harness/lava/job.js';
import { planScript, planSuite } from '../../harness/lava/plan.js';
import { loadSuite } from '../../harness/scenarios/load.js';
import { compile, selectByOnly } from '../../harness/scenarios/program.js';

t.test('the job: tmpfs deploy with the plan as a ramdisk overlay, qemu boot, a definition per suite', async (t) => {
  const job = load(jobDefinition({ trial: 'x', kernelUrl: 'file:///k', ramdiskUrl: 'file:///r', planUrl: 'file:///p', cmdline: ['no_timer_check'], suites: ['a', 'b c'], bootTimeoutS: 120, testTimeoutS: 600 })) as { actions: Record<string, any>[] };
  const [deploy, boot, test] = job.actions.map((a) => Object.values(a)[0]);
  t.equal(deploy.to, 'tmpfs');
  t.same(Object.keys(deploy.images.ramdisk.overlays), ['lava', 'ktrial']);
  t.equal(deploy.images.ramdisk.format, 'cpio.newc');
  t.match(deploy.images.kernel.image_arg, /ktrial\.console=lava no_timer_check"$/);
  t.equal(boot.method, 'qemu');
  t.same(test.definitions.map((d: any) => d.name), ['ktrial-a', 'ktrial-b-c']);
  t.same(test.definitions.map((d: any) => d.repository.run.steps[0]), ['sh /ktrial-plan.sh 1', 'sh /ktrial-plan.sh 2']);
  const device = load(deviceDictionary({ memoryMiB: 256, cpus: 2, devices: ['e1000,netdev=net0'], network: 'confined' })) as any;
  t.ok(device.actions.boot.methods.qemu.parameters.options.includes('-accel tcg'));
  t.ok(device.actions.boot.methods.qemu.parameters.options.includes('-netdev user,id=net0,restrict=on'), 'the lab guest is confined as a local one is');
  const open = load(deviceDictionary({ memoryMiB: 256, cpus: 2, devices: ['e1000,netdev=net0'], network: 'outbound' })) as any;
  t.ok(open.actions.boot.methods.qemu.parameters.options.includes('-netdev user,id=net0,restrict=off'), 'outbound only when asked');
  t.notOk(device.actions.boot.methods.qemu.parameters.options.some((o: string) => /kvm/.test(o)));
  t.equal(device.constants.failure_retry, 1);
});

t.test('the plan covers every case of both suites and the shell reads it', async (t) => {
  const ns = await loadSuite(repoPath('test', 'scenarios', 'namespaces.yaml'));
  const nsc = await loadSuite(repoPath('test', 'scenarios', 'ns-container.yaml'));
  const config = new KernelConfig(['CONFIG_UTS_NS', 'CONFIG_IPC_NS', 'CONFIG_CONTAINERS', 'CONFIG_CONTAINER_NS', 'CONFIG_CONTAINER_CPUACCT'].map((o) => [o, 'y'] as const));
  const plans = [planSuite(compile(ns, { kernelConfig: config })), planSuite(compile(nsc, { kernelConfig: config }))];
  t.same(plans[1]!.program.cases.filter((c) => c.skip).map((c) => c.skip!.detail), [], 'every ns-container case runs in the guest');
  t.same(plans[0]!.program.cases.filter((c) => c.skip).map((c) => c.skip!.cause), Array(plans[0]!.program.cases.filter((c) => c.skip).length).fill('missing-requirement'));
  t.match(plans[0]!.script, /^kt_step - 30 8 agent 1 ok - c output eq @KTV@host@ argv \/usr\/bin\/ktrial-agent --tag namespaces\.4 gethostname$/m, 'a captured value stays a marker for the guest');
  const dir = mkdtempSync(join(tmpdir(), 'ktrial-plan-'));
  writeFileSync(join(dir, 'plan.sh'), planScript(plans));
  t.doesNotThrow(() => execFileSync('sh', ['-n', join(dir, 'plan.sh')]), 'sh -n accepts the plan');
});

t.test('a suite the in-guest path cannot take is planned as not run, with the reason', async (t) => {
  const suite = await loadSuite(repoPath('test', 'scenarios', 'kselftest-core.yaml'));
  const plan = planSuite(compile(suite));
  t.equal(plan.script, '');
  t.ok(plan.program.cases.length > 0);
  t.ok(plan.program.cases.every((c) => c.skip?.cause === 'not-in-guest' && /files go into the guest over SSH/.test(c.skip.detail)));
});

t.test('--only cuts the plan to the cases it names; the others are not in the job', async (t) => {
  const nsc = await loadSuite(repoPath('test', 'scenarios', 'ns-container.yaml'));
  const config = new KernelConfig(['CONFIG_UTS_NS', 'CONFIG_IPC_NS', 'CONFIG_CONTAINERS', 'CONFIG_CONTAINER_NS', 'CONFIG_CONTAINER_CPUACCT'].map((o) => [o, 'y'] as const));
  const plan = planSuite(compile(nsc, { kernelConfig: config, select: selectByOnly(['rmdir: node_*', 'ns-container/unbound: *']) }));
  t.same(plan.program.cases.filter((c) => !c.skip).map((c) => c.name), [
    'rmdir: node_<pid> is busy while its task lives',
    'rmdir: node_<pid> can be removed once its task has exited',
    'unbound: with only cpuacct bound, unshare and clone make no node and the ns rules are absent',
  ], 'the two rmdir cases and the unbound case, by their names in the suite file');
  t.same(plan.script.match(/^kt_case \S+/gm)?.length, 3, 'the script holds those three cases');
  t.notMatch(plan.script, /^kt_case \d+_clone/m, 'and no clone case');
  t.match(plan.script, /^kt_suite ns-container\n.*\n.*--tag ns-container\.setup/m, 'the suite setup still runs');
});
