// Crash traces decoded on a real kernel: a 2.6.20 kernel with debug information oopses in
// the guest, and the frames ktrial decodes from its console must name functions and
// file:line that exist in the kernel source. 2.6.20's sysrq `c` only starts a kexec crash
// dump, so the oops is provoked by writing two zero bytes over the start of sys_sync
// through /dev/mem ("add %al,(%rax)" with the syscall number in rax: a NULL-page write)
// and calling sync(2). The expectations come from the source tree and from nm, not from the decoder.
import t from 'tap';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { localTree } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import { cacheRoot } from '../../harness/common/cache.js';
import { traceCrash } from '../../harness/kernel/crashtrace.js';

const SMOKE20 = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');
const DEBUG = ['CONFIG_IKCONFIG=y', 'CONFIG_IKCONFIG_PROC=y', 'CONFIG_DEBUG_KERNEL=y', 'CONFIG_DEBUG_INFO=y'].flatMap((o) => ['--kconfig-add', o]);
// 2.6.20 x86_64 maps the kernel image at __START_KERNEL_map + its physical address.
const START_KERNEL_MAP = 0xffffffff80000000n;
const tree = await localTree('smoke-2.6.20');

t.test('an oops on 2.6.20: every decoded frame names a function found in a source file at a line it has', { skip: tree.skip }, async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-crash-decode-'));
  const b = await ktrial(['build', SMOKE20, ...DEBUG, '--out', out, '-q']);
  t.equal(b.code, 0, b.stderr.slice(-400));
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { cacheKey: string; build: { tree?: string } };
  const vmlinux = join(cacheRoot(), 'kernels', manifest.cacheKey, 'vmlinux');
  const nm = await execa('nm', [vmlinux]);
  const sysSync = /^([0-9a-f]+) T sys_sync$/m.exec(nm.stdout);
  t.ok(sysSync, 'sys_sync in the kept vmlinux');
  const phys = BigInt(`0x${sysSync![1]}`) - START_KERNEL_MAP;
  const boot = await ktrial(['boot', SMOKE20, ...DEBUG, '--cmdline', 'noapic', '--out', out, '--', 'sh', '-c', `[ -e /dev/mem ] || mknod /dev/mem c 1 1; dd if=/dev/zero of=/dev/mem bs=1 count=2 seek=${phys} conv=notrunc 2>/dev/null; sync; echo survived`]);
  // An oops in a system call kills the calling process; the shell goes on.
  t.match(boot.stdout, /survived/, 'the oops killed sync, not the guest');
  const lines = (await readFile(join(out, 'console.log'), 'utf8')).split('\n');
  const at = lines.findIndex((l) => /Unable to handle kernel/.test(l));
  t.ok(at >= 0, 'the console has the oops');
  const { frames, decodeNote } = await traceCrash(lines.slice(at), vmlinux, manifest.build.tree);
  t.equal(decodeNote, undefined, 'decoded with file and line');
  const ip = frames.find((f) => f.ip);
  t.equal(ip?.function, 'sys_sync', 'the faulting instruction is in sys_sync');
  const decoded = frames.filter((f) => f.file);
  t.ok(decoded.length >= 1, `${decoded.length} frame(s) with file:line`);
  t.ok(frames.length >= 2, `${frames.length} frames: the faulting instruction and its callers`);
  for (const f of decoded) {
    const text = await readFile(join(tree.dir, f.file!), 'utf8').catch(() => undefined);
    t.ok(text !== undefined, `${f.file} exists in the 2.6.20 source`);
    if (text === undefined) continue;
    t.ok(f.line! >= 1 && f.line! <= text.split('\n').length, `${f.file}:${f.line} is a line of it`);
    t.match(text, new RegExp(`\\b${f.function}\\b`), `${f.function} appears in ${f.file}`);
  }
  t.equal(frames.filter((f) => f.function && !f.ip).length, frames.filter((f) => !f.ip).length, 'every call frame has its function');
});
