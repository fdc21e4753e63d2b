// `ktrial doctor`: every host tool and file ktrial uses, present or missing, with the Debian
// package that provides it; as aligned columns for a person or as JSON for a script.
import { access } from 'node:fs/promises';
import { HOST_FILES, HOST_TOOLS, which } from '../common/hosttools.js';
import { EXIT_CODES } from '../report/index.js';
import { alignColumns } from './columns.js';
import { confinementFor, QEMU_USERS, userName } from '../vm/confine.js';

export interface HostCheck {
  /** The command, or the file's path. */
  name: string;
  package: string;
  purpose: string;
  present: boolean;
  /** Where the command or file was found; null when missing. */
  path: string | null;
}

export async function checkHost(): Promise<HostCheck[]> {
  const checks: HostCheck[] = [];
  for (const t of HOST_TOOLS) {
    const at = await which(t.command);
    checks.push({ name: t.command, package: t.pkg, purpose: t.usedFor, present: at !== undefined, path: at ?? null });
  }
  for (const f of HOST_FILES) {
    const present = await access(f.path).then(() => true, () => false);
    checks.push({ name: f.path, package: f.pkg, purpose: f.usedFor, present, path: present ? f.path : null });
  }
  return checks;
}

/** How the guests' QEMU will be confined on this host. */
async function guestsLine(qemu: string): Promise<string> {
  const c = await confinementFor(qemu);
  const sandbox = c.sandbox ? 'QEMU in its seccomp sandbox' : `QEMU WITHOUT its seccomp sandbox (${c.sandboxProblem})`;
  const user = c.user ? `as user ${userName(c.user)}` : process.getuid?.() === 0 ? `as root: none of the users ${QEMU_USERS.join(', ')} exists (npx ktrial setup makes ${QEMU_USERS[0]})` : `as ${userName(undefined)}`;
  return `guests: ${sandbox}, ${user}; their network confined unless a run asks for outbound`;
}

export async function doctor(json: boolean): Promise<number> {
  const checks = await checkHost();
  const missing = checks.filter((c) => !c.present);
  if (json) {
    process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
  } else {
    process.stdout.write(`${alignColumns(checks.map((c) => [c.present ? 'ok' : 'MISSING', c.name, c.package, c.purpose]))}\n`);
    const pkgs = [...new Set(missing.map((c) => c.package))];
    const qemu = checks.find((c) => c.name === 'qemu-system-x86_64');
    if (qemu?.present) process.stdout.write(`\n${await guestsLine(qemu.path!)}\n`);
    process.stdout.write(missing.length ? `\n${missing.length} missing. Install: sudo apt-get install -y ${pkgs.join(' ')}   (or: sudo npx ktrial setup)\n` : '\nall host tools are present\n');
  }
  return missing.length ? EXIT_CODES.host : EXIT_CODES.ok;
}
