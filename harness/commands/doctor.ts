// `ktrial doctor`: every host tool and file ktrial uses, present or missing, with the Debian
// package that provides it; as aligned columns for a person or as JSON for a script.
import { access } from 'node:fs/promises';
import { HOST_FILES, HOST_TOOLS, which } from '../common/hosttools.js';
import { EXIT_CODES } from '../report/index.js';
import { alignColumns } from './columns.js';

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

export async function doctor(json: boolean): Promise<number> {
  const checks = await checkHost();
  const missing = checks.filter((c) => !c.present);
  if (json) {
    process.stdout.write(`${JSON.stringify(checks, null, 2)}\n`);
  } else {
    process.stdout.write(`${alignColumns(checks.map((c) => [c.present ? 'ok' : 'MISSING', c.name, c.package, c.purpose]))}\n`);
    const pkgs = [...new Set(missing.map((c) => c.package))];
    process.stdout.write(missing.length ? `\n${missing.length} missing. Install: sudo apt-get install -y ${pkgs.join(' ')}   (or: sudo npx ktrial setup)\n` : '\nall host tools are present\n');
  }
  return missing.length ? EXIT_CODES.host : EXIT_CODES.ok;
}
