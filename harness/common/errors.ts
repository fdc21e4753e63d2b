// Every failure ktrial reports belongs to one class; the class decides the exit code
// (harness/report/status.ts), so CI can tell a bad trial file from a kernel that crashed
// from a broken host.

export type FailureClass = 'bad-input' | 'kernel' | 'host';

export interface Where {
  file: string;
  line?: number;
  column?: number;
}

export function formatWhere(w: Where): string {
  let s = w.file;
  if (w.line !== undefined) {
    s += `:${w.line}`;
    if (w.column !== undefined) s += `:${w.column}`;
  }
  return s;
}

export class KtrialError extends Error {
  readonly cls: FailureClass;
  readonly where: Where | undefined;
  /** What the user should do about it. */
  readonly hint: string | undefined;
  /** Console or log lines around the failure, shown under the message. */
  readonly excerpt: string | undefined;

  constructor(
    cls: FailureClass,
    message: string,
    opts: { where?: Where; hint?: string; excerpt?: string; cause?: unknown } = {},
  ) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KtrialError';
    this.cls = cls;
    this.where = opts.where;
    this.hint = opts.hint;
    this.excerpt = opts.excerpt;
  }

  render(): string {
    return renderFailure(this.cls, this.where ? `${formatWhere(this.where)}: ${this.message}` : this.message, this);
  }
}

/** A failure as the user reads it: its class and message, the excerpt under it, and what to do. */
export function renderFailure(cls: string, message: string, detail: { excerpt?: string | undefined; hint?: string | undefined }): string {
  const parts = [`ktrial: ${cls} error: ${message}`];
  if (detail.excerpt) parts.push(detail.excerpt.replace(/^/gm, '  | '));
  if (detail.hint) parts.push(`  what to do: ${detail.hint}`);
  return parts.join('\n');
}

export const badInput = (message: string, opts: ConstructorParameters<typeof KtrialError>[2] = {}) =>
  new KtrialError('bad-input', message, opts);
export const kernelFailure = (message: string, opts: ConstructorParameters<typeof KtrialError>[2] = {}) =>
  new KtrialError('kernel', message, opts);
export const hostFailure = (message: string, opts: ConstructorParameters<typeof KtrialError>[2] = {}) =>
  new KtrialError('host', message, opts);

/** Thrown when the run was interrupted (SIGINT/SIGTERM); every stage unwinds and cleans up. */
export class Interrupted extends Error {
  constructor(readonly signal: string) {
    super(`interrupted by ${signal}`);
    this.name = 'Interrupted';
  }
}
