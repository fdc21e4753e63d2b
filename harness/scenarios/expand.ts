// Expansion: a Suite's case list with every matrix turned into one case per cell.
import { describeAction } from './actions.js';
import { substitute } from './vars.js';
import type { Case, Identity, Step, Suite } from './types.js';

export function expandSuite(suite: Suite): Case[] {
  // Requirements may name suite variables (a trial sets them for its kernel).
  const union = (...lists: (readonly string[] | undefined)[]) => [...new Set(lists.flatMap((l) => l ?? []).map((r) => substitute(r, suite.vars)))];
  const out: Case[] = [];
  let index = 0;
  for (const item of suite.cases) {
    if (item.kind === 'case') {
      const d = item.def;
      const c: Case = {
        suite: suite.name,
        index: ++index,
        name: d.name,
        requires: union(suite.requires, d.requires),
        timeoutMs: d.timeoutMs ?? suite.timeoutMs,
        vars: { ...d.vars },
        steps: d.steps,
        cleanup: d.cleanup,
      };
      if (d.description !== undefined) c.description = d.description;
      if (d.where) c.where = d.where;
      if (d.alone) c.alone = true;
      out.push(c);
      continue;
    }
    const m = item.def;
    for (const cell of m.cells) {
      const actor = m.actors.find((a) => a.name === cell.actor)!;
      const action = m.actions.find((a) => a.name === cell.action)!;
      const target = cell.target === undefined ? undefined : m.targets.find((t) => t.name === cell.target)!;
      const vars: Record<string, string> = { actor: actor.name, action: action.name, ...(target ? { target: target.name } : {}), ...m.vars, ...actor.vars, ...action.vars, ...(target?.vars ?? {}) };
      let tail = `${actor.name} ${action.name}${target ? ` ${target.name}` : ''}`;
      if (m.nameTemplate !== undefined) {
        try {
          tail = substitute(m.nameTemplate, { ...suite.vars, suite: suite.name, ...vars });
        } catch {
          // The loader checked the template's variables; keep the default if it still fails.
        }
      }
      const step: Step = { ...action.step, as: actor.as, pre: [...actor.pre, ...action.step.pre], expect: cell.expect };
      const c: Case = {
        suite: suite.name,
        index: ++index,
        name: `${m.title}: ${tail}`,
        requires: union(suite.requires, m.requires, action.requires, target?.requires),
        timeoutMs: m.timeoutMs ?? suite.timeoutMs,
        vars,
        steps: [...m.setup, ...(target?.setup ?? []), step],
        cleanup: [...(target?.cleanup ?? []), ...m.cleanup],
        matrix: { title: m.title, actor: actor.name, action: action.name, ...(target ? { target: target.name } : {}) },
      };
      if (m.description !== undefined) c.description = m.description;
      if (cell.where) c.where = cell.where;
      out.push(c);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Readable labels for reports.

const isRoot = (id: Identity) => id.uid === 0 && id.gid === 0 && id.groups === undefined && (id.caps === undefined || id.caps === 'all');

export function stepLabel(step: Step): string {
  if (step.name) return step.name;
  const what = step.kind === 'sh' ? `sh: ${step.sh}` : step.actions.map(describeAction).join('; ');
  const pre = step.pre.length ? ` after ${step.pre.map(describeAction).join('; ')}` : '';
  return `${what}${isRoot(step.as) ? '' : ` as ${step.as.name}`}${pre}`;
}

export { isRoot as isPlainRoot };
