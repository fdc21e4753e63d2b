// The cache under concurrency and failure: an entry being built by one process is waited
// for by another, never built twice; a failed build leaves nothing behind.
import t from 'tap';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { pathToFileURL } from 'node:url';
import { repoPath } from '../../harness/common/paths.js';

const cacheModule = pathToFileURL(repoPath('dist', 'harness', 'common', 'cache.js')).href;

/**
 * A process that asks the cache for entry things/k1. Its build counts itself in `counter`
 * and, when `gate` is given, holds until that file exists. It prints "waited " if it had to
 * wait for another process's lock, then "hit" or "built".
 */
function builder(counter: string, opts: { fail?: boolean; gate?: string } = {}): string {
  return `
import { cached } from ${JSON.stringify(cacheModule)};
import { access, appendFile, writeFile } from 'node:fs/promises';
const e = await cached('things', 'k1', async (tmp) => {
  await appendFile(${JSON.stringify(counter)}, 'built\\n');
  ${opts.gate ? `while (!(await access(${JSON.stringify(opts.gate)}).then(() => true, () => false))) await new Promise((r) => setTimeout(r, 50));` : ''}
  ${opts.fail ? "throw new Error('build broke');" : "await writeFile(tmp + '/payload', 'x');"}
}, { onWait: () => process.stdout.write('waited ') });
process.stdout.write(e.hit ? 'hit' : 'built');
`;
}

/** Resolves once `read()` gives something that `ready` accepts (polled, 600 times at most). */
async function until<T>(read: () => Promise<T>, ready: (v: T) => boolean): Promise<void> {
  for (let i = 0; !ready(await read()); i++) {
    if (i === 600) throw new Error('the awaited state never came');
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('two processes asking for one entry build it once', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-'));
  const counter = join(root, 'counter');
  const gate = join(root, 'gate');
  const env = { KTRIAL_CACHE: join(root, 'cache') };
  // The first process holds its build open until the second is seen waiting for the lock.
  const a = execa('node', ['--input-type=module', '-e', builder(counter, { gate })], { env });
  await until(() => readFile(counter, 'utf8').catch(() => ''), (c) => c === 'built\n');
  const b = execa('node', ['--input-type=module', '-e', builder(counter)], { env });
  let bOut = '';
  b.stdout?.on('data', (d: Buffer) => (bOut += d.toString()));
  await until(async () => bOut, (o) => o.startsWith('waited'));
  await writeFile(gate, '');
  const [ra, rb] = await Promise.all([a, b]);
  t.equal(ra.stdout, 'built', 'the first process built the entry');
  t.equal(rb.stdout, 'waited hit', 'the second waited for the first one\'s lock, then found the entry');
  t.equal(await readFile(counter, 'utf8'), 'built\n', 'the build ran once');
  const left = await readdir(join(root, 'cache', 'things'));
  t.same(left, ['k1'], 'no lock or temporary directory is left');
  t.same(await readdir(join(root, 'cache', 'things', 'k1')), ['.ktrial-complete', 'payload']);
});

t.test('a failed build leaves no entry and no temporary directory', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-'));
  const env = { KTRIAL_CACHE: join(root, 'cache') };
  const r = await execa('node', ['--input-type=module', '-e', builder(join(root, 'counter'), { fail: true })], { env, reject: false });
  t.not(r.exitCode, 0);
  t.same(await readdir(join(root, 'cache', 'things')), []);
});

t.test('a lock left by a dead process is broken', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-'));
  const env = { KTRIAL_CACHE: join(root, 'cache') };
  // A process that takes the lock and dies without releasing it.
  const dead = `import { lock } from ${JSON.stringify(cacheModule)}; import { mkdir } from 'node:fs/promises';
await mkdir(process.env.KTRIAL_CACHE + '/things', { recursive: true });
await lock(process.env.KTRIAL_CACHE + '/things/k1.lock'); process.exit(9);`;
  await execa('node', ['--input-type=module', '-e', dead], { env, reject: false });
  const r = await execa('node', ['--input-type=module', '-e', builder(join(root, 'counter'))], { env, timeout: 20_000 });
  t.equal(r.stdout, 'built');
});

t.test('waiters that all find a dead owner take the lock one at a time', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-'));
  const env = { KTRIAL_CACHE: join(root, 'cache') };
  const lockPath = join(root, 'cache', 'things', 'k1.lock');
  const journal = join(root, 'journal');
  const go = join(root, 'go');
  const WAITERS = 8;
  const ROUNDS = 4;
  for (let round = 0; round < ROUNDS; round++) {
    // A holder that dies without letting go, then waiters released together onto its lock.
    const dead = `import { lock } from ${JSON.stringify(cacheModule)}; import { mkdir } from 'node:fs/promises';
await mkdir(${JSON.stringify(join(root, 'cache', 'things'))}, { recursive: true });
await lock(${JSON.stringify(lockPath)}); process.exit(9);`;
    await execa('node', ['--input-type=module', '-e', dead], { env, reject: false });
    // Each waiter notes when it holds the lock and when it lets go; holders must not overlap.
    const waiter = `import { lock } from ${JSON.stringify(cacheModule)}; import { appendFile, writeFile } from 'node:fs/promises'; import { existsSync } from 'node:fs';
await appendFile(${JSON.stringify(join(root, 'ready'))}, 'r');
while (!existsSync(${JSON.stringify(go)})) {}
const release = await lock(${JSON.stringify(lockPath)});
await appendFile(${JSON.stringify(journal)}, 'in\\n');
await new Promise((r) => setTimeout(r, 100));
await appendFile(${JSON.stringify(journal)}, 'out\\n');
await release();`;
    await rm(go, { force: true });
    await writeFile(join(root, 'ready'), '');
    const all = Promise.all(Array.from({ length: WAITERS }, () => execa('node', ['--input-type=module', '-e', waiter], { env, timeout: 60_000 })));
    await until(() => readFile(join(root, 'ready'), 'utf8'), (r) => r.length === WAITERS);
    await writeFile(go, '');
    await all;
  }
  const lines = (await readFile(journal, 'utf8')).trim().split('\n');
  t.same(lines, Array.from({ length: WAITERS * ROUNDS }, () => ['in', 'out']).flat(), 'every holder let go before the next took the lock');
});

t.test('tryLock never waits: it fails while another process holds the lock and takes it once that process is gone', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-trylock-'));
  const lockPath = join(root, 'entry.lock');
  const { tryLock } = (await import(cacheModule)) as typeof import('../../harness/common/cache.js');
  const holder = execa('node', ['--input-type=module', '-e', `import { lock } from ${JSON.stringify(cacheModule)}; await lock(${JSON.stringify(lockPath)}); process.stdout.write('locked'); setInterval(() => {}, 1000);`]);
  let said = '';
  holder.stdout?.on('data', (d: Buffer) => (said += d.toString()));
  await until(async () => said, (s) => s === 'locked');
  t.equal(await tryLock(lockPath), undefined, 'held by another process: no lock, at once');
  t.equal((await readFile(join(lockPath, 'pid'), 'utf8')).trim(), String(holder.pid), 'the holder\'s pid is left in place');
  holder.kill();
  await holder.catch(() => undefined);
  const release = await tryLock(lockPath);
  t.type(release, 'function', 'the holder gone, the lock is taken');
  t.equal((await readFile(join(lockPath, 'pid'), 'utf8')).trim(), String(process.pid));
  await release!();
  t.same(await readdir(root), [], 'releasing removes the lock directory');
});
