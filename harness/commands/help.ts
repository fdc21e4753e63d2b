// One command's usage, cut from the full usage text so that each command and option is
// described once: the command's entry under "commands:", the option sections that name the
// command ("options for run and boot:"), and the sections that hold for every command.
// Wrong arguments are a UsageError, which the command line answers with that usage.

/** The usage of `command`, or undefined when the usage text has no such command. */
export function commandUsage(usage: string, command: string): string | undefined {
  // Paragraphs, and within one, each "options for ...:" header starts a section of its own.
  const sections = usage.split(/\n\s*\n/).flatMap((p) => p.split(/\n(?=options for [^:\n]+:$)/m));
  const commands = sections.find((s) => s.startsWith('commands:'));
  const lines = commands?.split('\n').slice(1) ?? [];
  const start = lines.findIndex((l) => l.trim().split(/\s+/)[0] === command && /^ {2}\S/.test(l));
  if (start < 0) return undefined;
  const entry = [lines[start]!];
  for (const l of lines.slice(start + 1)) {
    if (/^ {2}\S/.test(l)) break;
    entry.push(l);
  }
  // "  run TRIAL     build (cached), ..." : the synopsis ends at the first run of 2+ spaces.
  const [synopsis = command, ...first] = entry[0]!.trim().split(/ {2,}/);
  const description = [first.join(' '), ...entry.slice(1).map((l) => l.trim())].filter(Boolean);
  const options = sections.filter((s) => {
    // "options for lava (and --source, ...):" names lava; the remark in parentheses names options, not commands.
    const header = /^options for ([^:(]+?)\s*(?:\([^)]*\))?:/.exec(s);
    return header ? header[1]!.split(/,\s*|\s+and\s+/).includes(command) : false;
  });
  const general = sections.filter((s) => !s.startsWith('usage:') && !s.startsWith('commands:') && !s.startsWith('options for '));
  return [`usage: ktrial ${synopsis} [options]\n  ${description.join('\n  ')}`, ...options, ...general].join('\n\n');
}

/** Wrong arguments: the message, then the command's usage, on stderr; exit 2. */
export class UsageError extends Error {
  constructor(
    message: string,
    readonly command?: string,
  ) {
    super(message);
  }
}
