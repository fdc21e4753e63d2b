// Crash traces decoded on a real kernel, as a user sees them: a 2.6.20 kernel with debug
// information oopses in a case of `ktrial run` (test/fixtures/scenarios/oops-sync.yaml), and
// the frames in the run's results.json and summary.txt must name functions and file:line that
// exist in the kernel source. The expectations come from the source tree and from nm, not
// from the decoder.
import t from 'tap';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { localTree } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import { cacheRoot } from '../../harness/common/cache.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE20 = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');
const DEBUG = ['CONFIG_IKCONFIG=y', 'CONFIG_IKCONFIG_PROC=y', 'CONFIG_DEBUG_KERNEL=y', 'CONFIG_DEBUG_INFO=y'].flatMap((o) => ['--kconfig-add', o]);
// 2.6.20 x86_64 maps the kernel image at __START_KERNEL_map + its physical address.
const START_KERNEL_MAP = 0xffffffff80000000n;
const tree = await localTree('smoke-2.6.20');

t.test('an oops on 2.6.20 in a run: the frames in results.json and summary.txt name functions found in source files at lines they have', { skip: tree.skip }, async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-crash-decode-'));
  const b = await ktrial(['build', SMOKE20, ...DEBUG, '--out', out, '-q']);
  t.equal(b.code, 0, b.stderr.slice(-400));
  const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as { cacheKey: string };
  const nm = await execa('nm', [join(cacheRoot(), 'kernels', manifest.cacheKey, 'vmlinux')]);
  const sysSync = /^([0-9a-f]+) T sys_sync$/m.exec(nm.stdout);
  t.ok(sysSync, 'sys_sync in the kept vmlinux');
  const phys = BigInt(`0x${sysSync![1]}`) - START_KERNEL_MAP;
  const r = await ktrial(['run', SMOKE20, ...DEBUG, '--cmdline', 'noapic', '--suite', repoPath('test', 'fixtures', 'scenarios', 'oops-sync.yaml'), '--var', `sys_sync_phys=${phys}`, '--out', out]);
  t.equal(r.code, 3, 'exit 3: the kernel crashed');
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.same(res.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict]), [['an oops in sync', 'failed'], ['after the oops', 'passed']], 'the oops fails its case; a fresh guest runs the next');
  const crash = res.cases.find((c) => c.name === 'an oops in sync')?.crash;
  t.match(crash?.reason, /Unable to handle kernel|Oops/, 'the case failed with the oops');
  const consoleLines = (await readFile(join(out, 'console.log'), 'utf8')).split('\n');
  t.match(consoleLines[(crash?.consoleLine ?? 0) - 1], /Unable to handle kernel|Oops/, 'consoleLine points at the report in console.log');
  const frames = crash?.frames ?? [];
  t.equal(crash?.decodeNote, undefined, 'decoded with file and line');
  t.equal(frames.find((f) => f.ip)?.function, 'sys_sync', 'the faulting instruction is in sys_sync');
  t.ok(frames.length >= 2, `${frames.length} frames: the faulting instruction and its callers`);
  const decoded = frames.filter((f) => f.file);
  t.ok(decoded.length >= 1, `${decoded.length} frame(s) with file:line`);
  for (const f of decoded) {
    const text = await readFile(join(tree.dir, f.file!), 'utf8').catch(() => undefined);
    t.ok(text !== undefined, `${f.file} exists in the 2.6.20 source`);
    if (text === undefined) continue;
    t.ok(f.line! >= 1 && f.line! <= text.split('\n').length, `${f.file}:${f.line} is a line of it`);
    t.match(text, new RegExp(`\\b${f.function}\\b`), `${f.function} appears in ${f.file}`);
  }
  t.equal(frames.filter((f) => f.function && !f.ip).length, frames.filter((f) => !f.ip).length, 'every call frame has its function');
  const summary = await readFile(join(out, 'summary.txt'), 'utf8');
  t.match(summary, `stack trace (console.log line ${crash?.consoleLine})`, 'the summary shows the trace and where it is');
  t.match(summary, /\n {4}at sys_sync\+0x/, 'the summary starts the trace at the faulting instruction');
  t.match(summary, `(${decoded[0]?.file}:${decoded[0]?.line})`, "the summary gives the first decoded frame's file:line");
});
