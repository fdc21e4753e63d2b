import { mkdtemp, readdir, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Whether a process still exists (a QEMU that should be gone, say). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A directory to use as PATH: links to every program of the usual bin directories but
 * those `left` names, so a run sees them as not installed.
 */
export async function pathWithout(left: (name: string) => boolean): Promise<string> {
  const bin = await mkdtemp(join(tmpdir(), 'ktrial-path-'));
  for (const dir of ['/usr/local/bin', '/usr/bin', '/bin', '/usr/sbin', '/sbin']) {
    for (const name of await readdir(dir).catch(() => [])) {
      if (left(name)) continue;
      await symlink(join(dir, name), join(bin, name)).catch(() => undefined);
    }
  }
  return bin;
}
