// The host side of the guest agent's protocol (images/agent/README.md): building its
// command line from a step, and reading its JSON lines back into an observation.
import { actionArgv } from './actions.js';
import { isPlainRoot } from './expand.js';
import { AGENT_EXIT } from './names.js';
import { shellLine } from '../common/shell.js';
import type { Identity, Step } from './types.js';

export function identityArgv(id: Identity): string[] {
  if (isPlainRoot(id)) return [];
  const argv = ['--uid', String(id.uid), '--gid', String(id.gid)];
  if (id.groups) argv.push('--groups', id.groups.length ? id.groups.join(',') : 'none');
  const c = id.caps;
  if (c !== undefined) argv.push('--caps', c === 'all' || c === 'none' ? c : Array.isArray(c) ? c.join(',') || 'none' : c.drop.map((x) => `-${x}`).join(','));
  return argv;
}

function loadArgv(l: Step['load']): string[] {
  if (!l) return [];
  return [
    ...(l.workers !== undefined ? ['--workers', String(l.workers)] : []),
    ...(l.each !== undefined ? ['--each', l.each] : []),
    ...(l.repeat !== undefined ? ['--repeat', String(l.repeat)] : []),
    ...(l.timer !== undefined ? ['--timer', String(l.timer)] : []),
    ...(l.thread ? ['--thread'] : []),
  ];
}

/** A command for the guest: a shell script as written (a plain sh step), or a program's argv. */
export type GuestCommand = { script: string } | { argv: string[] };

/** The command as the guest's shell reads it. */
export const commandLine = (c: GuestCommand): string => ('script' in c ? c.script : shellLine(c.argv));

const isPlainSh = (step: Step) => step.kind === 'sh' && step.pre.length === 0 && isPlainRoot(step.as);

/** The command that runs a step in the guest. */
export function stepCommand(step: Step, agentPath: string, tag: string): GuestCommand {
  if (isPlainSh(step)) return { script: step.sh! };
  const argv = [agentPath, ...identityArgv(step.as), ...loadArgv(step.load), '--tag', tag];
  for (const p of step.pre) argv.push('pre', ...actionArgv(p), '--');
  if (step.kind === 'sh') argv.push('exec', '/bin/sh', '-c', step.sh!);
  else step.actions.forEach((a, i) => argv.push(...(i ? ['--'] : []), ...actionArgv(a)));
  return { argv };
}

/** How a step's result is read (interpret below): what its stdout holds. */
export type Reading =
  /** A shell command's own exit status and stdout. */
  | { kind: 'sh' }
  /** The agent's lines for `pre` pre-steps (as the identity `as`), then the shell's own output. */
  | { kind: 'sh-in-agent'; pre: number; as: string }
  /** Only the agent's lines; the one with index `results` is the last action's. */
  | { kind: 'agent'; results: number; as: string };

export function readingOf(step: Step): Reading {
  if (isPlainSh(step)) return { kind: 'sh' };
  if (step.kind === 'sh') return { kind: 'sh-in-agent', pre: step.pre.length, as: step.as.name };
  return { kind: 'agent', results: step.pre.length + step.actions.length, as: step.as.name };
}

// ---------------------------------------------------------------------------------------

export interface AgentLine {
  action: string;
  index: number;
  stage: 'pre' | 'identity' | 'action';
  ok: boolean;
  errno?: string;
  errnum?: number;
  syscall?: string;
  message?: string;
  output?: string;
  [field: string]: unknown;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  durationMs: number;
}

/** What a step produced, as far as expectations are concerned. */
export type Observation =
  /** The agent reached the step's last action; `line` is its result, ok or failed. */
  | { kind: 'final'; line: AgentLine; lines: AgentLine[]; exec: ExecResult }
  /** A shell command ran to completion (stdout without the agent's pre-step lines). */
  | { kind: 'sh'; exitCode: number; stdout: string; stderr: string; exec: ExecResult }
  /** Something other than the action's own outcome: bad arguments, a failed pre-step or
   *  identity change, an earlier action failing, no agent. Never matches an expectation. */
  | { kind: 'problem'; problem: string; exec: ExecResult };

const errText = (l: AgentLine) => `${l.errno ?? 'error'}${l.syscall || l.message ? ` (${[l.syscall, l.message].filter(Boolean).join(': ')})` : ''}`;

function tailText(s: string, n = 300): string {
  const t = s.trim();
  return t.length > n ? `...${t.slice(-n)}` : t;
}

function parseLine(text: string): AgentLine | { agent_error: string; message: string } | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    if (typeof v.agent_error === 'string') return { agent_error: v.agent_error, message: String(v.message ?? '') };
    if (typeof v.action === 'string' && typeof v.ok === 'boolean') return v as AgentLine;
  } catch {
    // not one of ours
  }
  return undefined;
}

export function interpret(reading: Reading, r: ExecResult): Observation {
  if (reading.kind === 'sh') return { kind: 'sh', exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, exec: r };
  const noAgent = r.exitCode === 127 || r.exitCode === 126;
  const rawLines = r.stdout.split('\n');
  const pre = reading.kind === 'sh-in-agent' ? reading.pre : 0;

  // The agent's own lines: all of stdout for actions; only the leading pre-step lines (and a
  // setup or exec failure) for a wrapped shell command, whose own output follows.
  const lines: AgentLine[] = [];
  let consumed = 0;
  for (const text of rawLines) {
    if (reading.kind === 'sh-in-agent' && lines.length >= pre) {
      // After the pre-steps, only an identity or exec failure line can still be the agent's.
      const l = parseLine(text);
      if (l && 'agent_error' in l) return { kind: 'problem', problem: `the agent rejected its arguments: ${l.message}`, exec: r };
      if (l && !l.ok && (l.stage === 'identity' || l.action === 'exec')) lines.push(l), (consumed += text.length + 1);
      break;
    }
    if (text === '') {
      consumed += 1;
      continue;
    }
    const l = parseLine(text);
    if (l && 'agent_error' in l) return { kind: 'problem', problem: `the agent rejected its arguments: ${l.message}`, exec: r };
    if (!l) {
      if (noAgent && lines.length === 0) return { kind: 'problem', problem: `the agent could not be run (exit ${r.exitCode})${r.stderr.trim() ? `: ${tailText(r.stderr)}` : ''}`, exec: r };
      return { kind: 'problem', problem: `unexpected agent output: ${tailText(text, 200)}`, exec: r };
    }
    lines.push(l);
    consumed += text.length + 1;
  }
  const bad = lines.find((l) => !l.ok && (l.stage === 'identity' || l.stage === 'pre'));
  if (bad?.stage === 'identity')
    return { kind: 'problem', problem: `could not take on the identity ${reading.as}: ${bad.syscall ?? 'setup'} failed with ${bad.errno}${bad.detail ? ` (${String(bad.detail)})` : ''}`, exec: r };
  if (bad) return { kind: 'problem', problem: `pre-step ${bad.index} (${bad.action}) failed with ${errText(bad)}`, exec: r };

  if (reading.kind === 'sh-in-agent') {
    const exec = lines.find((l) => l.action === 'exec');
    if (exec) return { kind: 'problem', problem: `could not start the shell: ${errText(exec)}`, exec: r };
    if (r.exitCode === AGENT_EXIT.setupFailed && lines.length < pre)
      return { kind: 'problem', problem: `the agent stopped during its pre-steps (exit ${r.exitCode})`, exec: r };
    return { kind: 'sh', exitCode: r.exitCode, stdout: r.stdout.slice(consumed), stderr: r.stderr, exec: r };
  }

  const n = reading.results;
  const last = lines[lines.length - 1];
  if (!last) {
    if (noAgent) return { kind: 'problem', problem: `the agent could not be run (exit ${r.exitCode})${r.stderr.trim() ? `: ${tailText(r.stderr)}` : ''}`, exec: r };
    return { kind: 'problem', problem: `the agent printed no result (exit ${r.exitCode})${r.stderr.trim() ? `: ${tailText(r.stderr)}` : ''}`, exec: r };
  }
  if (last.index === n) return { kind: 'final', line: last, lines, exec: r };
  if (!last.ok) return { kind: 'problem', problem: `action ${last.index} of ${n} (${last.action}) failed with ${errText(last)} before the last action ran`, exec: r };
  return { kind: 'problem', problem: `the agent stopped after action ${last.index} of ${n} (${last.action}) with exit ${r.exitCode}${r.stderr.trim() ? `: ${tailText(r.stderr)}` : ''}`, exec: r };
}
