// A LAVA job for a trial: deploy the kernel and the guest image to tmpfs (the plan added as
// an overlay of the ramdisk), boot them with LAVA's qemu method, and run each suite as an
// inline test definition. Plus a device dictionary for LAVA's "qemu" device type (x86_64,
// TCG), rendered here as data, for running the job locally with lava-run.
import type { NetworkAccess } from '../common/network.js';
import { dump } from 'js-yaml';

/** The prompt of the console shell the guest's init starts with ktrial.console=lava. */
export const CONSOLE_PROMPT = 'ktrial-lava# ';
/** The kernel command line word that selects that mode (images/init/init.c). */
export const CONSOLE_MODE_ARG = 'ktrial.console=lava';
/** Where the plan lands in the guest (a `file` overlay of the ramdisk). */
export const PLAN_PATH = '/ktrial-plan.sh';

export interface JobInput {
  trial: string;
  /** URLs (file:// locally, the lab's artifact server otherwise). */
  kernelUrl: string;
  ramdiskUrl: string;
  planUrl: string;
  /** Kernel command line words besides console and mode. */
  cmdline: string[];
  /** One test definition per suite, in plan order. */
  suites: string[];
  bootTimeoutS: number;
  /** An upper bound for the test action: the sum of the suites' case timeouts. */
  testTimeoutS: number;
}

const minutes = (s: number) => ({ minutes: Math.max(1, Math.ceil(s / 60)) });

/** A LAVA test definition name: letters, digits, - and _. */
export const definitionName = (suite: string) => `ktrial-${suite.replace(/[^A-Za-z0-9_-]+/g, '-')}`;

export function jobDefinition(j: JobInput): string {
  const job = {
    job_name: `ktrial ${j.trial}`,
    device_type: 'qemu',
    visibility: 'public',
    priority: 'medium',
    context: { arch: 'x86_64' },
    timeouts: { job: minutes(j.bootTimeoutS + j.testTimeoutS + 300), action: minutes(j.testTimeoutS + 60), connection: { minutes: 2 } },
    actions: [
      {
        deploy: {
          to: 'tmpfs',
          os: 'oe',
          timeout: { minutes: 5 },
          images: {
            kernel: { url: j.kernelUrl, image_arg: `-kernel {kernel} -append "${['console=ttyS0', 'panic=1', CONSOLE_MODE_ARG, ...j.cmdline].join(' ')}"` },
            ramdisk: {
              url: j.ramdiskUrl,
              image_arg: '-initrd {ramdisk}',
              format: 'cpio.newc',
              overlays: { lava: true, ktrial: { url: j.planUrl, format: 'file', path: PLAN_PATH } },
            },
          },
        },
      },
      { boot: { method: 'qemu', media: 'tmpfs', timeout: minutes(j.bootTimeoutS), prompts: [CONSOLE_PROMPT] } },
      {
        test: {
          timeout: minutes(j.testTimeoutS),
          definitions: j.suites.map((s, i) => ({
            from: 'inline',
            name: definitionName(s),
            path: 'inline/ktrial.yaml',
            repository: {
              metadata: { format: 'Lava-Test Test Definition 1.0', name: definitionName(s), description: `ktrial suite ${s}` },
              run: { steps: [`sh ${PLAN_PATH} ${i + 1}`] },
            },
          })),
        },
      },
    ],
  };
  return dump(job, { lineWidth: -1, noRefs: true });
}

export interface DeviceInput {
  memoryMiB: number;
  cpus: number;
  /** -device arguments for the NIC (chosen from the kernel's config, as ktrial run does) and extras. */
  devices: string[];
  /** confined: the guest's user network is restricted (restrict=on), as ktrial run's is. */
  network: NetworkAccess;
}

/** The device dictionary: LAVA's qemu device type for x86_64 under TCG, as lava-run reads it. */
export function deviceDictionary(d: DeviceInput): string {
  const device = {
    device_type: 'qemu',
    available_architectures: ['x86_64'],
    constants: {
      'shutdown-message': 'The system is going down for reboot NOW',
      'kernel-start-message': 'Linux version [0-9]',
      'default-shell-prompt': 'lava-test: # ',
      spawn_maxread: '4092',
      // lava-dispatcher 2023.01 reads these two and fails without them.
      failure_retry: 1,
      boot_retry: 1,
      posix: { lava_test_sh_cmd: '/bin/sh', lava_test_results_dir: '/lava-%s', lava_test_shell_file: '~/.bashrc' },
    },
    commands: {},
    actions: {
      deploy: { connections: { serial: null }, methods: { tmpfs: null, image: { parameters: { guest: { size: 512, interface: 'ide', driveid: 'lavatest' } } } } },
      boot: {
        connections: { serial: null },
        methods: {
          qemu: {
            parameters: {
              command: 'qemu-system-x86_64',
              options: ['-nographic', '-machine pc', '-accel tcg', `-m ${d.memoryMiB}`, `-smp ${d.cpus},sockets=${d.cpus}`, '-no-reboot', `-netdev user,id=net0,restrict=${d.network === 'confined' ? 'on' : 'off'}`, ...d.devices.map((x) => `-device ${x}`)],
            },
          },
        },
      },
    },
    timeouts: { actions: { 'apply-overlay-image': { minutes: 2 } }, connections: {} },
  };
  return dump(device, { lineWidth: -1, noRefs: true });
}
