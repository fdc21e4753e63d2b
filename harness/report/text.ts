// Small text helpers shared by the reporters.
import type { CaseResult } from '../scenarios/types.js';

export const caseTitle = (c: Pick<CaseResult, 'suite' | 'name'>) => `${c.suite}: ${c.name}`;

export const oneLine = (s: string) => s.replace(/\s*\r?\n\s*/g, ' ').trim();

export { fmtSeconds } from '../common/progress.js';

const PLAIN = /^[A-Za-z/][A-Za-z0-9_ ./()+,=-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n)$/i;
// YAML's printable set: tab, newline and the rest from space on (C1 controls, DEL excluded).
const NON_PRINTABLE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/;

/** A string as a YAML scalar: plain when safe, a literal block for clean multi-line text,
 *  otherwise double-quoted (JSON escapes are valid YAML). */
function scalar(s: string, indent: string): string {
  if (s.includes('\n') && !NON_PRINTABLE.test(s) && !/[ \t]$/m.test(s)) {
    const body = s.replace(/\n+$/, '');
    const chomp = s.endsWith('\n') ? (s.endsWith('\n\n') ? '+' : '') : '-';
    const ind = /^[ \t]/.test(body) || body.startsWith('\n') ? '2' : '';
    return `|${ind}${chomp}\n${body.split('\n').map((l) => (l ? `${indent}  ${l}` : '')).join('\n')}`;
  }
  if (PLAIN.test(s) && !s.endsWith(' ') && !RESERVED.test(s) && !s.includes(': ') && !s.includes(' #')) return s;
  return JSON.stringify(s);
}

/** A mapping as YAML lines (keys are plain identifiers). */
export function yamlLines(obj: Record<string, unknown>, indent = ''): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined) continue;
    if (v === null || typeof v === 'number' || typeof v === 'boolean') out.push(`${indent}${k}: ${v === null ? 'null' : String(v)}`);
    else if (typeof v === 'string') out.push(`${indent}${k}: ${scalar(v, indent)}`);
    else if (Array.isArray(v)) {
      if (v.length === 0) out.push(`${indent}${k}: []`);
      else {
        out.push(`${indent}${k}:`);
        for (const item of v) {
          if (item && typeof item === 'object') {
            const inner = yamlLines(item as Record<string, unknown>, `${indent}    `);
            out.push(`${indent}  - ${inner[0]!.trimStart()}`, ...inner.slice(1));
          } else out.push(`${indent}  - ${typeof item === 'string' ? scalar(item, `${indent}  `) : String(item)}`);
        }
      }
    } else {
      out.push(`${indent}${k}:`, ...yamlLines(v as Record<string, unknown>, `${indent}  `));
    }
  }
  return out;
}
