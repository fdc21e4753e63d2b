// The compiler and binutils a kernel is built with; their versions are part of every
// build's cache key and manifest.
import { badInput } from '../common/errors.js';
import { requireTools, which } from '../common/hosttools.js';
import { run } from '../common/proc.js';
import type { KernelEra } from '../eras/eras.js';

export interface Toolchain {
  cc: string;
  ccVersion: string;
  gccMajor: number;
  ldVersion: string;
  makeVersion: string;
}

/** The make variables every make call on a kernel tree needs: its arch and the compiler. */
export function makeVars(era: KernelEra, tc: Toolchain): string[] {
  return [`ARCH=${era.makeArch}`, `CC=${tc.cc}`, `HOSTCC=${tc.cc}`];
}

export async function detectToolchain(cc: string): Promise<Toolchain> {
  if (!(await which(cc))) {
    const pkg = cc === 'gcc' ? 'gcc' : cc;
    throw badInput(`the compiler ${cc} named by the trial is not installed`, { hint: `install it: sudo apt-get install -y ${pkg}, or choose another with toolchain.cc in the trial` });
  }
  await requireTools(['make', 'ld'], 'a kernel build');
  const [ccV, major, ld, mk] = await Promise.all([run(cc, ['--version']), run(cc, ['-dumpversion']), run('ld', ['--version']), run('make', ['--version'])]);
  const first = (s: string) => s.split('\n')[0]!.trim();
  return {
    cc,
    ccVersion: first(ccV.stdout),
    gccMajor: Number(major.stdout.trim().split('.')[0]),
    ldVersion: first(ld.stdout),
    makeVersion: first(mk.stdout),
  };
}
