// Small text helpers shared by the reporters.
import { dump } from 'js-yaml';
import type { CaseResult } from '../scenarios/index.js';

export const caseTitle = (c: Pick<CaseResult, 'suite' | 'name'>) => `${c.suite}: ${c.name}`;

export const oneLine = (s: string) => s.replace(/\s*\r?\n\s*/g, ' ').trim();

export { fmtSeconds } from '../common/progress.js';

/** A mapping as YAML lines (for TAP diagnostics), each prefixed with `indent`. */
export function yamlLines(obj: Record<string, unknown>, indent = ''): string[] {
  const text = dump(obj, { lineWidth: -1, noRefs: true, skipInvalid: true });
  return text.replace(/\n$/, '').split('\n').map((l) => (l ? `${indent}${l}` : l));
}
