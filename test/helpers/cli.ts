import { execa } from 'execa';
import { repoPath } from '../../harness/common/paths.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run the real ktrial command line, as a user would. */
export async function ktrial(args: string[], env: Record<string, string> = {}, timeoutMs = 3_600_000): Promise<CliResult> {
  const r = await execa('node', [repoPath('bin', 'ktrial.js'), ...args], { env, reject: false, timeout: timeoutMs, cwd: repoPath() });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}
