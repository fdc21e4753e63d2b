// Host tools ktrial runs, each with the Debian package that provides it. A stage checks
// its tools before it starts, so a missing one is named at once with the install line.
import { access, constants } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { hostFailure } from './errors.js';

export interface HostTool {
  command: string;
  pkg: string;
  usedFor: string;
}

export const HOST_TOOLS: readonly HostTool[] = [
  { command: 'make', pkg: 'make', usedFor: 'kernel and guest userland builds' },
  { command: 'gcc', pkg: 'gcc', usedFor: 'the default kernel compiler' },
  { command: 'ld', pkg: 'binutils', usedFor: 'kernel builds' },
  { command: 'flex', pkg: 'flex', usedFor: 'kconfig (newer kernels)' },
  { command: 'bison', pkg: 'bison', usedFor: 'kconfig (newer kernels)' },
  { command: 'bc', pkg: 'bc', usedFor: 'kernel build (timeconst)' },
  { command: 'perl', pkg: 'perl', usedFor: 'kernel build scripts' },
  { command: 'patch', pkg: 'patch', usedFor: 'applying patch series' },
  { command: 'tar', pkg: 'tar', usedFor: 'unpacking kernel sources' },
  { command: 'xz', pkg: 'xz-utils', usedFor: 'unpacking .tar.xz sources' },
  { command: 'bzip2', pkg: 'bzip2', usedFor: 'unpacking .tar.bz2 sources' },
  { command: 'git', pkg: 'git', usedFor: 'git sources' },
  { command: 'musl-gcc', pkg: 'musl-tools', usedFor: 'the static guest userland' },
  { command: 'qemu-system-x86_64', pkg: 'qemu-system-x86', usedFor: 'booting guests' },
  { command: 'apt-get', pkg: 'apt', usedFor: 'fetching busybox and dropbear sources' },
  { command: 'dpkg-source', pkg: 'dpkg-dev', usedFor: 'unpacking busybox and dropbear sources' },
  { command: 'lava-run', pkg: 'lava-dispatcher', usedFor: 'ktrial lava: validating and running LAVA jobs locally' },
];

/** Kernel headers/libraries newer kernels need at build time, checked as files. */
export const HOST_FILES: readonly { path: string; pkg: string; usedFor: string }[] = [
  { path: '/usr/include/libelf.h', pkg: 'libelf-dev', usedFor: 'building kernels >= 4.x with objtool' },
  { path: '/usr/include/openssl/ssl.h', pkg: 'libssl-dev', usedFor: 'building kernels with module signing tools' },
  { path: '/usr/src/linux-source-6.1.tar.xz', pkg: 'linux-source-6.1', usedFor: 'the Debian 6.1 trial; selftests of kernels before 6.12' },
  { path: '/usr/src/linux-source-6.12.tar.xz', pkg: 'linux-source-6.12', usedFor: 'the Debian 6.12 trial; selftests of kernels from 6.12' },
];

/** The tools' packages and what the trials and tests need besides (e.g. tmux drives the
 *  `boot --shell` test, chromium opens the `compare --html` page in its test). */
export const SETUP_PACKAGES = [
  ...new Set([...HOST_TOOLS.map((t) => t.pkg), ...HOST_FILES.map((f) => f.pkg), 'gcc-11', 'cpio', 'openssh-client', 'kmod', 'debian-archive-keyring', 'tmux', 'chromium']),
];

export async function which(command: string): Promise<string | undefined> {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, command);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

/** Fails with one message naming every missing command and the apt-get line that installs them. */
export async function requireTools(commands: readonly string[], stage: string): Promise<void> {
  const missing: HostTool[] = [];
  for (const c of commands) {
    if (await which(c)) continue;
    missing.push(HOST_TOOLS.find((t) => t.command === c) ?? { command: c, pkg: c, usedFor: stage });
  }
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  throw hostFailure(`${stage} needs host tools that are missing: ${missing.map((m) => `${m.command} (package ${m.pkg})`).join(', ')}`, {
    hint: `install them: sudo apt-get install -y ${pkgs.join(' ')}   (or run \`sudo npx ktrial setup\` to install everything ktrial uses)`,
  });
}
