// A build log summarised: the first errors with file:line, and how many warnings.
import { OBJECT_LINE } from './buildstats.js';

export interface BuildDiagnostic {
  file: string;
  line: number;
  column?: number;
  message: string;
}

export interface BuildSummary {
  errors: BuildDiagnostic[];
  /** Lines that make or the linker printed as errors without a file:line. */
  otherErrors: string[];
  warnings: number;
  /** Objects compiled (CC lines), for progress. */
  compiled: number;
}

const DIAG = /^([^\s:][^:]*):(\d+):(?:(\d+):)? (?:fatal )?(error|warning): (.*)$/;

export function summariseBuildLog(text: string): BuildSummary {
  const errors: BuildDiagnostic[] = [];
  const otherErrors: string[] = [];
  let warnings = 0;
  let compiled = 0;
  for (const line of text.split('\n')) {
    if (OBJECT_LINE.test(line)) compiled++;
    const d = DIAG.exec(line);
    if (d) {
      if (d[4] === 'warning') warnings++;
      else errors.push({ file: d[1]!, line: Number(d[2]), ...(d[3] ? { column: Number(d[3]) } : {}), message: d[5]! });
      continue;
    }
    if (/\bwarning:/.test(line)) warnings++;
    else if (/^[\w.+-]+: (fatal )?error: |undefined reference to|Error: |^ld: .*error|#error|^\S*make(\[\d+\])?: \*\*\* |^\S+:\d+: \*\*\* /.test(line)) otherErrors.push(line.trim());
  }
  return { errors, otherErrors, warnings, compiled };
}

export function describeFailure(s: BuildSummary): string {
  if (s.errors.length) {
    const e = s.errors[0]!;
    return `${e.file}:${e.line}${e.column ? `:${e.column}` : ''}: error: ${e.message}${s.errors.length > 1 ? ` (and ${s.errors.length - 1} more error${s.errors.length > 2 ? 's' : ''})` : ''}`;
  }
  // A compiler or linker line says more than make's; make's own complaints (no rule,
  // syntax) say more than its "Error N" echoes.
  const isMake = (l: string) => /make(\[\d+\])?: \*\*\*|^\S+:\d+: \*\*\* /.test(l);
  const tool = s.otherErrors.find((l) => !isMake(l));
  const makeOwn = s.otherErrors.find((l) => isMake(l) && !/\] Error \d+$/.test(l) && !/Waiting for unfinished/.test(l));
  return tool ?? makeOwn ?? s.otherErrors[0] ?? 'make failed without an error line (see the build log)';
}
