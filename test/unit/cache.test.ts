// The cache under concurrency and failure: an entry being built by one process is waited
// for by another, never built twice; a failed build leaves nothing behind.
import t from 'tap';
import { mkdtemp, readFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { pathToFileURL } from 'node:url';
import { repoPath } from '../../harness/common/paths.js';

const cacheModule = pathToFileURL(repoPath('dist', 'harness', 'common', 'cache.js')).href;

function builder(counter: string, fail = false): string {
  return `
import { cached } from ${JSON.stringify(cacheModule)};
import { appendFile, writeFile } from 'node:fs/promises';
const e = await cached('things', 'k1', async (tmp) => {
  await appendFile(${JSON.stringify(counter)}, 'built\\n');
  await new Promise((r) => setTimeout(r, 1500));
  ${fail ? "throw new Error('build broke');" : "await writeFile(tmp + '/payload', 'x');"}
});
process.stdout.write(e.hit ? 'hit' : 'built');
`;
}

t.test('two processes asking for one entry build it once', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-'));
  const counter = join(root, 'counter');
  const env = { KTRIAL_CACHE: join(root, 'cache') };
  const [a, b] = await Promise.all([
    execa('node', ['--input-type=module', '-e', builder(counter)], { env }),
    execa('node', ['--input-type=module', '-e', builder(counter)], { env }),
  ]);
  t.same([a.stdout, b.stdout].sort(), ['built', 'hit']);
  t.equal(await readFile(counter, 'utf8'), 'built\n', 'the build ran once');
  const left = await readdir(join(root, 'cache', 'things'));
  t.same(left, ['k1'], 'no lock or temporary directory is left');
  t.same(await readdir(join(root, 'cache', 'things', 'k1')), ['.ktrial-complete', 'payload']);
});

t.test('a failed build leaves no entry and no temporary directory', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-cache-'));
  const env = { KTRIAL_CACHE: join(root, 'cache') };
  const r = await execa('node', ['--input-type=module', '-e', builder(join(root, 'counter'), true)], { env, reject: false });
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
