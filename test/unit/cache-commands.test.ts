// `ktrial cache ls | du | prune` on a small cache built here with the real layout: entries
// completed at known dates, a kernel whose lock another process holds, a work tree another
// process is using, an unfinished build and the remembered sources, which prune never touches.
import t from 'tap';
import { access, mkdir, mkdtemp, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { repoPath } from '../../harness/common/paths.js';

const cacheModule = pathToFileURL(repoPath('dist', 'harness', 'common', 'cache.js')).href;
const DAY = 86_400_000;
const NOW = Date.now();
const daysAgo = (n: number) => new Date(NOW - n * DAY);
const exists = (p: string) => access(p).then(() => true, () => false);
const MiB = 1024 * 1024;

async function entry(dir: string, completed: Date, files: Record<string, string | Buffer>): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  await writeFile(join(dir, '.ktrial-complete'), completed.toISOString());
}

function manifest(trial: string, release: string, sourceId: string, cc: string): string {
  // The fields of a real kernel manifest.json that ls shows (see harness/kernel/pipeline.ts).
  return JSON.stringify({ ktrialBuildRecipe: 1, cacheKey: 'x', trial: { name: trial, file: `configs/trials/${trial}.yaml` }, source: { id: sourceId, version: release }, toolchain: { cc }, kernelRelease: release });
}

/** A process that takes the lock at `path` with cache.ts's lock() and holds it until killed; resolves once it holds it. */
async function holder(path: string): Promise<{ child: ResultPromise }> {
  const child = execa('node', ['--input-type=module', '-e', `import { lock } from ${JSON.stringify(cacheModule)}; await lock(${JSON.stringify(path)}); process.stdout.write('locked'); setInterval(() => {}, 1000);`]);
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (d: Buffer) => d.toString().includes('locked') && resolve());
    child.catch(reject);
  });
  // Wrapped: a ResultPromise returned as it is would be awaited until the process ends.
  return { child };
}

const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-cmd-'));
const env = { KTRIAL_CACHE: root };
const k = (key: string) => join(root, 'kernels', key);
const w = (key: string) => join(root, 'worktrees', key);
await entry(k('k-old'), daysAgo(40), { 'manifest.json': manifest('old-trial', '2.6.20', `tarball:${'a'.repeat(64)}`, 'gcc-12'), bzImage: Buffer.alloc(MiB) });
await entry(k('k-mid'), daysAgo(10), { 'manifest.json': manifest('mid-trial', '2.6.24', 'git:0123456789abcdef0123', 'gcc-11'), bzImage: Buffer.alloc(MiB) });
await entry(k('k-new'), daysAgo(1), { 'manifest.json': manifest('new-trial', '6.1.192', 'debian:linux-source-6.1=6.1.192-3', 'gcc'), bzImage: Buffer.alloc(MiB) });
await entry(k('k-held'), daysAgo(50), { 'manifest.json': manifest('held-trial', '2.6.20', 'tree:feed', 'gcc-12'), bzImage: Buffer.alloc(MiB) });
await mkdir(k('k-next.tmp-4242'), { recursive: true }); // a build in progress: no completion mark
for (const [key, usedDaysAgo] of [['w-stale', 60], ['w-busy', 60], ['w-recent', 2]] as const) {
  await entry(w(key), daysAgo(60), { '.ktrial-worktree.json': '{"touched":[]}', 'Makefile': 'x' });
  await utimes(join(w(key), '.ktrial-worktree.json'), daysAgo(usedDaysAgo), daysAgo(usedDaysAgo));
}
await mkdir(join(root, 'sources', 'known'), { recursive: true });
await writeFile(join(root, 'sources', 'known', 'linux-2.6.20.json'), '{}');
await utimes(join(root, 'sources', 'known'), daysAgo(90), daysAgo(90));
await mkdir(join(root, 'downloads'));
await writeFile(join(root, 'downloads', 'linux-2.6.20.tar.bz2'), Buffer.alloc(MiB));
await utimes(join(root, 'downloads', 'linux-2.6.20.tar.bz2'), daysAgo(45), daysAgo(45));

t.test('ls: the kernels with trial, release, source, compiler, date and size; other kinds by key', async (t) => {
  const r = await ktrial(['cache', 'ls'], env);
  t.equal(r.code, 0);
  const row = (key: string) => r.stdout.split('\n').find((l) => l.trim().startsWith(key)) ?? '';
  const day = (n: number) => daysAgo(n).toISOString().slice(0, 16).replace('T', ' ');
  t.match(row('k-old'), new RegExp(`^ +k-old +old-trial +2\\.6\\.20 +tarball:a{12} +gcc-12 +${day(40)} +1\\.0 MiB$`));
  t.match(row('k-mid'), new RegExp(`mid-trial +2\\.6\\.24 +git:0123456789ab +gcc-11 +${day(10)} `));
  t.match(row('k-new'), /new-trial +6\.1\.192 +debian:linux-source-6\.1=6\.1\.192-3 +gcc /);
  const keys = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)[0]);
  t.same(keys.filter((x) => x?.startsWith('k-')), ['k-new', 'k-mid', 'k-old', 'k-held'], 'kernels newest first, the unfinished build left out');
  t.match(row('w-recent'), new RegExp(`^ +w-recent +${day(2)} `), 'a work tree is dated by its last use');
  t.match(row('linux-2.6.20.tar.bz2'), new RegExp(day(45)), 'a download is dated by its file');
  t.notOk(keys.includes('known'), 'the remembered sources are not an entry');
});

t.test('du: entries and size per kind, and the total', async (t) => {
  const r = await ktrial(['cache', 'du'], env);
  t.equal(r.code, 0);
  t.match(r.stdout, /^kernels\/ +4 entries +4\.[01] MiB$/m, 'four complete kernels of 1 MiB each, and their small files');
  t.match(r.stdout, /^downloads\/ +1 entry +1\.0 MiB$/m);
  t.match(r.stdout, /^total +5\.\d MiB$/m);
});

t.test('prune removes what is old or beyond --keep, and never an entry in use', async (t) => {
  const { child: heldKernel } = await holder(`${k('k-held')}.lock`);
  const { child: busyTree } = await holder(`${w('w-busy')}.inuse`);
  t.teardown(() => {
    heldKernel.kill();
    busyTree.kill();
  });
  const du = await execa('du', ['-s', '-B1', k('k-old'), k('k-mid'), w('w-stale'), join(root, 'downloads', 'linux-2.6.20.tar.bz2')]);
  const expectFreed = du.stdout.split('\n').reduce((s, l) => s + Number(l.split('\t')[0]), 0);

  const r = await ktrial(['cache', 'prune', '--older-than', '30', '--keep', '1'], env);
  t.equal(r.code, 0);
  for (const gone of [k('k-old'), k('k-mid'), w('w-stale'), join(root, 'downloads', 'linux-2.6.20.tar.bz2')]) t.notOk(await exists(gone), `${gone} was removed`);
  for (const kept of [k('k-new'), k('k-held'), w('w-busy'), w('w-recent'), k('k-next.tmp-4242'), join(root, 'sources', 'known', 'linux-2.6.20.json')]) t.ok(await exists(kept), `${kept} is still there`);
  t.match(r.stdout, /^removed kernels\/k-old \(old-trial, 2\.6\.20\)/m);
  t.match(r.stdout, /^removed kernels\/k-mid /m, 'beyond --keep 1');
  t.match(r.stdout, new RegExp(`^kept kernels/k-held \\(held-trial, 2\\.6\\.20\\): in use by process ${heldKernel.pid}$`, 'm'));
  t.match(r.stdout, new RegExp(`^kept worktrees/w-busy: in use by process ${busyTree.pid}$`, 'm'));
  const freed = /^freed ([\d.]+) MiB: 4 removed, 2 in use kept$/m.exec(r.stdout);
  t.ok(freed, 'the last line says how much was freed and how many entries');
  if (freed) t.ok(Math.abs(Number(freed[1]) * MiB - expectFreed) <= 0.05 * MiB, `freed ${freed[1]} MiB, du measured ${expectFreed} bytes`);
  t.ok(await exists(`${k('k-held')}.lock`), 'the holder\'s lock directory is left to it');

  heldKernel.kill();
  await heldKernel.catch(() => undefined);
  const after = await ktrial(['cache', 'prune', '--older-than', '30'], env);
  t.match(after.stdout, /^removed kernels\/k-held /m, 'once its holder is gone, the entry goes too');
  t.notOk(await exists(k('k-held')));
});

t.test('wrong cache arguments are usage errors', async (t) => {
  for (const args of [['cache'], ['cache', 'prune'], ['cache', 'ls', '--keep', '2'], ['cache', 'prune', '--keep', 'two'], ['cache', 'shrink']]) {
    const r = await ktrial(args, env);
    t.equal(r.code, 2, `ktrial ${args.join(' ')} exits 2`);
    t.match(r.stderr, /^usage: ktrial cache/m);
  }
});
