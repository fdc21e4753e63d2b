// What ktrial knows about each kernel era, as data: one record per range of versions.
// Stages read these fields; no stage branches on a version number itself.
import type { KernelConfig } from '../config/kconfig.js';

export interface KernelVersion {
  major: number;
  minor: number;
  sub: number;
  extra: string;
}

export interface CompatSeries {
  /** Directory under kernel-patches/compat/ holding a quilt `series`. */
  dir: string;
  /** Compiler majors this series is needed for (all when absent). */
  forGccMajor?: { min: number };
}

export interface KernelEra {
  name: string;
  /** First version of the era, inclusive. */
  from: string;
  /** First version after the era, exclusive (open-ended when absent). */
  until?: string;
  /** ARCH= for make. */
  makeArch: string;
  /** Where make leaves the bootable image, relative to the tree. */
  bzImage: string;
  /** Toolchain-compatibility series applied before the trial's own patches. */
  compat: CompatSeries[];
  /** How a merged .config is completed non-interactively. */
  configCompletion: 'olddefconfig' | 'oldconfig-defaults';
  /** Base targets the era's kconfig offers. */
  baseTargets: string[];
  /**
   * Kernel command line words every boot of this era gets. no_timer_check: under TCG on a
   * loaded host the IO-APIC timer check can fail and panic a healthy kernel. Up to 2.6.24
   * no_timer_check only skips the first of check_timer()'s four tries (the fallbacks still
   * count ticks, and panic "IO-APIC + timer doesn't work!" when the host is busy: 2 of 37
   * boots of 2.6.20 at load 12-25), so those eras also boot with noapic, which leaves the
   * timer and the NIC on the 8259 PIC and skips check_timer() altogether.
   */
  bootArgs: string[];
  /**
   * Features the era always has although no config option names them; scenario
   * requirements see them as set (2.6.24 builds UTS and IPC namespaces in unconditionally).
   */
  impliedOptions?: Record<string, string>;
  /**
   * The trial (configs/trials/<name>.yaml) whose config and suites a run without a trial
   * file uses for a tree of this era: its base target and guest fragments, its smoke suite.
   */
  defaultTrial?: string;
}

export const ERAS: readonly KernelEra[] = [
  {
    name: '2.6.20-2.6.23',
    from: '2.6.20',
    until: '2.6.24',
    makeArch: 'x86_64',
    bzImage: 'arch/x86_64/boot/bzImage',
    compat: [{ dir: '2.6.20', forGccMajor: { min: 5 } }],
    configCompletion: 'oldconfig-defaults',
    baseTargets: ['allnoconfig', 'defconfig', 'allmodconfig', 'allyesconfig'],
    bootArgs: ['no_timer_check', 'noapic'],
    defaultTrial: 'smoke-2.6.20',
  },
  {
    name: '2.6.24',
    from: '2.6.24',
    until: '2.6.25',
    makeArch: 'x86_64',
    bzImage: 'arch/x86/boot/bzImage',
    compat: [{ dir: '2.6.24', forGccMajor: { min: 5 } }],
    configCompletion: 'oldconfig-defaults',
    baseTargets: ['allnoconfig', 'defconfig', 'allmodconfig', 'allyesconfig'],
    bootArgs: ['no_timer_check', 'noapic'],
    impliedOptions: { CONFIG_UTS_NS: 'y', CONFIG_IPC_NS: 'y' },
    defaultTrial: 'smoke-2.6.24',
  },
  {
    name: '2.6.25-3.6',
    from: '2.6.25',
    until: '3.7',
    makeArch: 'x86_64',
    bzImage: 'arch/x86/boot/bzImage',
    // No compat series verified for this range yet (the 2.6.24 one does not carry over).
    compat: [],
    configCompletion: 'oldconfig-defaults',
    baseTargets: ['allnoconfig', 'defconfig', 'allmodconfig', 'allyesconfig'],
    bootArgs: ['no_timer_check'],
  },
  {
    name: '3.7-3.16',
    from: '3.7',
    until: '3.17',
    makeArch: 'x86_64',
    bzImage: 'arch/x86/boot/bzImage',
    compat: [],
    configCompletion: 'olddefconfig',
    baseTargets: ['allnoconfig', 'defconfig', 'allmodconfig', 'allyesconfig'],
    bootArgs: ['no_timer_check'],
  },
  {
    name: '3.17-current',
    from: '3.17',
    makeArch: 'x86_64',
    bzImage: 'arch/x86/boot/bzImage',
    compat: [],
    configCompletion: 'olddefconfig',
    baseTargets: ['allnoconfig', 'tinyconfig', 'defconfig', 'allmodconfig', 'allyesconfig'],
    bootArgs: ['no_timer_check'],
    defaultTrial: 'smoke-debian-6.1',
  },
];

export function parseVersion(s: string): KernelVersion {
  const m = /^(\d+)\.(\d+)(?:\.(\d+))?(.*)$/.exec(s.trim());
  if (!m) throw new Error(`not a kernel version: ${s}`);
  return { major: Number(m[1]), minor: Number(m[2]), sub: Number(m[3] ?? 0), extra: m[4] ?? '' };
}

export function compareVersions(a: KernelVersion, b: KernelVersion): number {
  return a.major - b.major || a.minor - b.minor || a.sub - b.sub;
}

export const versionString = (v: KernelVersion) => `${v.major}.${v.minor}.${v.sub}${v.extra}`;

export function eraNamed(name: string): KernelEra | undefined {
  return ERAS.find((e) => e.name === name);
}

/** A kernel's options as scenario requirements see them: the era's implied options (built
 *  in without a Kconfig symbol, e.g. UTS namespaces on 2.6.24), then the .config's values. */
export function optionsWithImplied(eraName: string, config: KernelConfig): KernelConfig {
  return config.withDefaults(eraNamed(eraName)?.impliedOptions ?? {});
}

export function eraFor(v: KernelVersion): KernelEra | undefined {
  return ERAS.find((e) => compareVersions(v, parseVersion(e.from)) >= 0 && (!e.until || compareVersions(v, parseVersion(e.until)) < 0));
}

/** The compat series an era needs with the given compiler major version. */
export function compatSeriesFor(era: KernelEra, gccMajor: number): CompatSeries[] {
  return era.compat.filter((c) => !c.forGccMajor || gccMajor >= c.forGccMajor.min);
}
