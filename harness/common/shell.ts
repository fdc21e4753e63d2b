// Command lines for a POSIX shell: the guest's busybox sh and the re-run line a user pastes.

/** One word as a POSIX shell reads it back: as is when plain, else single-quoted. */
export function shellQuote(s: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Words as one command line. */
export const shellLine = (words: readonly string[]) => words.map(shellQuote).join(' ');
