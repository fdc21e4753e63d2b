import { execa } from 'execa';
import { repoPath } from '../../harness/common/paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real ktrial command line, as a user would (in the checkout, unless `cwd` says where). */
export async function ktrial(args: string[], env: Record<string, string> = {}, timeoutMs = 3_600_000, cwd = repoPath()): Promise<CliResult> {
  const r = await execa('node', [repoPath('bin', 'ktrial.js'), ...args], { env, reject: false, timeout: timeoutMs, cwd });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
