import { REQUIREMENT_PATTERN, REQUIREMENT_SYNTAX } from '../config/kconfig.js';
import { bool, dict, int, list, obj, oneOf, str } from '../common/schema.js';
import { VAR_NAME_RE } from '../scenarios/vars.js';
import { NETWORK_ACCESS } from '../common/network.js';

const configSymbol = /^CONFIG_[A-Za-z0-9_]+$/;
const relPath = str({ description: 'a path, relative to the trial file' });

const source = obj(
  {
    name: { schema: str({ pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/ }), description: 'a stable name for this source; KTRIAL_SOURCE_<NAME> in the environment overrides it' },
    tarball: { schema: str(), description: 'URL or path of a .tar.gz/.tar.bz2/.tar.xz' },
    sha256: { schema: str({ pattern: /^[0-9a-f]{64}$/ }), description: 'pinned sha256 of the tarball' },
    git: { schema: str(), description: 'a git repository (path or URL)' },
    ref: { schema: str(), description: 'the commit, tag or branch of the git repository' },
    path: { schema: relPath, description: 'a local kernel tree (never modified)' },
    debian: { schema: str({ pattern: /^linux-source-[0-9.]+$/ }), description: "a Debian linux-source-X package's tarball" },
  },
  { description: 'where the kernel source comes from: exactly one of tarball, git, path, debian' },
);

const config = obj({
  base: { schema: str({ pattern: /^[a-z0-9_]+config$/ }), description: 'make target giving the base .config (allnoconfig, tinyconfig, defconfig, ...)', required: true },
  fragments: {
    schema: list(oneOf([relPath, obj({ file: { schema: relPath, required: true }, 'best-effort': { schema: bool(), description: 'options kconfig drops are warnings, not bad input (a fragment shared by kernels that lack some of them)' } })])),
    description: 'kconfig fragments merged in order; later wins',
  },
  options: { schema: dict(oneOf([str(), int(), bool()]), { keyPattern: configSymbol }), description: 'inline options, merged last (y, n, m, a number or a string)' },
  require: { schema: list(str({ pattern: REQUIREMENT_PATTERN })), description: `options that must hold in the final .config: ${REQUIREMENT_SYNTAX}` },
});

const timeouts = obj({
  build: int({ min: 1, description: 'seconds' }),
  boot: int({ min: 1, description: 'seconds' }),
  case: int({ min: 1, description: "seconds for every scenario case, in place of the suites' own per-case timeouts (unset: the suites decide)" }),
});

export const trialSchema = obj({
  name: { schema: str({ pattern: /^[A-Za-z0-9][A-Za-z0-9._-]*$/, description: 'names the output directory out/<name>: letters, digits, . _ -, starting with a letter or digit' }), required: true },
  description: str(),
  source: { schema: source, required: true },
  patches: { schema: list(relPath), description: 'patch series (directories holding a quilt `series` file, or single .patch files), applied in order after the compat series' },
  config: { schema: config, required: true },
  toolchain: obj({ cc: { schema: str({ pattern: /^(gcc|gcc-[0-9]+)$/ }), description: 'the C compiler: gcc (the host default), gcc-11, gcc-12, ...' } }),
  guest: obj({
    memory: int({ min: 64, max: 16384, description: 'MiB' }),
    cpus: int({ min: 1, max: 64, description: 'guest CPUs (QEMU -smp); more than one needs CONFIG_SMP' }),
    cmdline: str({ description: 'extra kernel command line' }),
    network: str({ enum: NETWORK_ACCESS, description: 'outbound: the guest may reach beyond itself (QEMU\'s user network routes its traffic); confined (the default): it reaches only the SSH port ktrial forwards to it; --network overrides it' }),
  }),
  scenarios: { schema: list(relPath), description: 'scenario suites to run' },
  vars: {
    schema: dict(oneOf([str(), int(), bool()]), { keyPattern: VAR_NAME_RE }),
    description: "suite variables for this kernel: each replaces the default of a variable the trial's suites declare under vars (a string, a number or true/false)",
  },
  'expected-failures': list(
    obj({
      case: { schema: str(), required: true, description: 'case name, or a glob (*)' },
      reason: { schema: str(), required: true },
      finding: str({ description: 'where the finding is written up' }),
      warning: str({ description: 'a regular expression: the entry lists kernel warnings (console lines it matches, in the cases `case` names) that do not fail a case, instead of a case expected to fail' }),
    }),
  ),
  timeouts,
  jobs: { schema: oneOf([int({ min: 1, max: 256 }), str({ pattern: /^auto$/ })]), description: 'guests running cases at once (auto: the host\'s cores); --jobs overrides it' },
  'max-reboots': { schema: int({ min: 0, max: 1000 }), description: 'fresh guests booted in the run to replace ones that crashed or stopped answering (3); --max-reboots overrides it' },
});

export function trialJsonSchemaText(): string {
  const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://ktrial.invalid/schema/trial.schema.json', title: 'ktrial trial', ...trialSchema.json() };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
