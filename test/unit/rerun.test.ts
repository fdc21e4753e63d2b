// The re-run line: words a shell reads back unchanged, and a --source that names exactly
// what was built.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { shellLine, shellQuote } from '../../harness/common/shell.js';
import { exactSourceArgument } from '../../harness/source/source.js';

t.test('a command line reads back as the same words in a real shell', async (t) => {
  const words = ['plain', 'two words', "it's", 'a*glob', '$HOME', 'back\\slash', 'semi;colon', '', "'", 'new\nline', 'CONFIG_X=y', '/path/to/linux@v2.6.20'];
  const out = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${shellLine(words)}`]).toString();
  t.same(out.split('\0').slice(0, -1), words);
  t.equal(shellQuote('CONFIG_X=y'), 'CONFIG_X=y', 'plain words stay unquoted');
  t.equal(shellQuote('unshare *'), "'unshare *'");
});

t.test('the exact --source names a commit, a file, a tree or a package', async (t) => {
  t.equal(exactSourceArgument({ kind: 'git', repository: '/src/linux', ref: 'HEAD', commit: '5759bb8f0000' }), '/src/linux@5759bb8f0000', 'a git ref becomes its commit');
  t.equal(exactSourceArgument({ kind: 'tarball', file: '/cache/downloads/linux-2.6.20.tar.bz2', sha256: 'x', url: 'https://example.org/linux-2.6.20.tar.bz2' }), 'https://example.org/linux-2.6.20.tar.bz2');
  t.equal(exactSourceArgument({ kind: 'tarball', file: '/tmp/linux-2.6.20.tar.bz2', sha256: 'x' }), '/tmp/linux-2.6.20.tar.bz2');
  t.equal(exactSourceArgument({ kind: 'path', path: '/work/trees/linux-2.6.20', fingerprint: 'f' }), '/work/trees/linux-2.6.20');
  t.equal(exactSourceArgument({ kind: 'debian', package: 'linux-source-6.1', version: '6.1.1-1', file: '/usr/src/x' }), 'debian:linux-source-6.1');
  t.equal(exactSourceArgument(JSON.parse('{"kind":"unknown"}')), undefined);
});
