// One command's usage cut from the full text, and doctor's aligned columns.
import t from 'tap';
import { commandUsage } from '../../harness/commands/help.js';
import { alignColumns } from '../../harness/commands/columns.js';

const USAGE = `usage: tool <command> [options]

commands:
  go THING      do the thing;
                at length
  stop          stop it

options for go and stop:
  --fast        quickly
options for go:
  --far         a long way

environment: HOME
exit codes: 0 fine`;

t.test('a command gets its entry, the option sections naming it, and the general sections', async (t) => {
  t.equal(
    commandUsage(USAGE, 'go'),
    `usage: ktrial go THING [options]
  do the thing;
  at length

options for go and stop:
  --fast        quickly

options for go:
  --far         a long way

environment: HOME
exit codes: 0 fine`,
  );
  const stop = commandUsage(USAGE, 'stop') ?? '';
  t.match(stop, /^usage: ktrial stop \[options\]\n {2}stop it\n/);
  t.match(stop, /--fast/);
  t.notMatch(stop, /--far/, 'an option section for another command is left out');
  t.equal(commandUsage(USAGE, 'fly'), undefined, 'an unknown command has no usage');
  t.equal(commandUsage(USAGE, 'THING'), undefined, 'a word of a synopsis is not a command');
});

t.test('columns are as wide as their widest cell, the last one unpadded', async (t) => {
  t.equal(alignColumns([['ok', 'make', 'make', 'builds'], ['MISSING', '/usr/include/openssl/ssl.h', 'libssl-dev', 'signing']]), ['ok       make                        make        builds', 'MISSING  /usr/include/openssl/ssl.h  libssl-dev  signing'].join('\n'));
  t.equal(alignColumns([]), '');
});

t.test('an options header may add a remark in parentheses; the command it names still gets the section', async (t) => {
  const usage = `usage: tool <command>

commands:
  go            go
  stop          stop

options for stop (and --fast, --slow):
  --brake       at once`;
  t.match(commandUsage(usage, 'stop'), /options for stop \(and --fast, --slow\):\n {2}--brake/);
  t.notMatch(commandUsage(usage, 'go'), /--brake/);
});
