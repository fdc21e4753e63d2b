// Builds the guest's static musl userland (busybox, dropbear) from the recipe in
// images/recipes/userland.yaml, once per (package versions, recipe, toolchain): the result
// lives in the cache under guest-userland/<key>.
import { mkdir, readFile, writeFile, copyFile, rm, symlink, access, readdir, chmod } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { badInput, hostFailure } from '../common/errors.js';
import { run, runOk } from '../common/proc.js';
import { cached, cacheRoot } from '../common/cache.js';
import { hashValue, sha256File, shortHash } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import type { StageContext } from '../common/context.js';
import { fetchSources, unpackSource } from './debsrc.js';
import { expand, loadUserlandRecipe, recipesDir, setKconfig, type Component, type UserlandRecipe } from './recipe.js';

/** Bump when the way recipes are interpreted changes, so old cache entries are not reused. */
const USERLAND_BUILDER = 1;

export interface ComponentManifest {
  name: string;
  package: string;
  version: string;
  dscSha256: string;
  /** Output name -> sha256 of the built file. */
  outputs: Record<string, string>;
  buildSeconds: number;
}

export interface Userland {
  /** Cache entry directory; outputs are in <dir>/out/<name>. */
  dir: string;
  /** Output name -> absolute path. */
  outputs: Record<string, string>;
  components: ComponentManifest[];
  toolchain: Record<string, string>;
  hash: string;
  hit: boolean;
}

/** Versions of the host packages that shape the binaries (musl, the uapi headers). */
export async function toolchainFacts(): Promise<Record<string, string>> {
  const facts: Record<string, string> = {};
  const r = await run('dpkg-query', ['-W', '-f', '${Package} ${Version}\n', 'musl-tools', 'musl-dev', 'linux-libc-dev', 'gcc-12', 'gcc']);
  for (const line of r.stdout.split('\n')) {
    const [p, v] = line.trim().split(' ');
    if (p && v) facts[p] = v;
  }
  if (!facts['musl-tools']) {
    // Not a Debian host: fall back to the compiler's own version line.
    const v = await run('musl-gcc', ['--version']);
    facts['musl-gcc'] = v.stdout.split('\n')[0]?.trim() ?? 'unknown';
  }
  return facts;
}

/** A directory of symlinks to the host's uapi header directories named by the recipe. */
export async function uapiDir(recipe: UserlandRecipe, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  const multiarch = (await readdir('/usr/include').catch(() => [] as string[])).filter((d) => /-linux-gnu[a-z0-9]*$/.test(d)).sort();
  for (const name of recipe.uapi_headers) {
    const candidates = [join('/usr/include', name), ...multiarch.map((m) => join('/usr/include', m, name))];
    let found: string | undefined;
    for (const c of candidates) {
      if (await access(join(c)).then(() => true, () => false)) {
        found = c;
        break;
      }
    }
    if (!found) {
      throw hostFailure(`the kernel uapi headers <${name}/...> are not installed`, { hint: 'install them: sudo apt-get install -y linux-libc-dev' });
    }
    await symlink(found, join(dest, name));
  }
}

async function runStep(c: Component, i: number, tree: string, vars: Record<string, string>, env: Record<string, string>, ctx: StageContext, log: string): Promise<void> {
  const step = c.steps[i]!;
  const where = `images/recipes/userland.yaml: ${c.name} step ${i + 1}`;
  if ('run' in step) {
    const argv = step.run.map((a) => expand(a, vars, where));
    await writeFile(log, `\n$ ${argv.join(' ')}\n`, { flag: 'a' });
    await runOk(argv[0]!, argv.slice(1), { cwd: tree, env, signal: ctx.signal, logFile: log, input: step.input ?? '' }, `${c.name}: ${argv.join(' ')}`);
  } else if ('kconfig' in step) {
    const file = join(tree, step.kconfig.file);
    const set: Record<string, string> = {};
    for (const [k, v] of Object.entries(step.kconfig.set)) set[k] = expand(v, vars, where);
    await writeFile(file, setKconfig(await readFile(file, 'utf8'), set));
    await writeFile(log, `\n# set in ${step.kconfig.file}: ${JSON.stringify(set)}\n`, { flag: 'a' });
  } else if ('write' in step) {
    await writeFile(join(tree, step.write.path), step.write.text);
    await writeFile(log, `\n# wrote ${step.write.path}\n`, { flag: 'a' });
  } else if ('patch' in step) {
    const file = join(recipesDir(), step.patch);
    await writeFile(log, `\n$ patch -p1 < images/recipes/${step.patch}\n`, { flag: 'a' });
    await runOk('patch', ['-p1', '--forward', '--batch', '-i', file], { cwd: tree, signal: ctx.signal, logFile: log }, `${c.name}: applying ${step.patch}`);
  }
}

async function patchTexts(recipe: UserlandRecipe): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const c of recipe.components) {
    for (const s of c.steps) {
      if ('patch' in s) {
        try {
          out[s.patch] = await readFile(join(recipesDir(), s.patch), 'utf8');
        } catch {
          throw badInput(`images/recipes/userland.yaml: component ${c.name} names a patch file that does not exist: images/recipes/${s.patch}`);
        }
      }
    }
  }
  return out;
}

export async function buildUserland(ctx: StageContext, opts: { jobs?: number } = {}): Promise<Userland> {
  const { recipe, text } = await loadUserlandRecipe();
  const toolchain = await toolchainFacts();
  const key = hashValue({ builder: USERLAND_BUILDER, recipe: text, patches: await patchTexts(recipe), toolchain });
  const jobs = String(opts.jobs ?? Math.max(1, Math.min(availableParallelism(), 8)));
  const logDir = join(cacheRoot(), 'logs');
  let built: ComponentManifest[] | undefined;
  const entry = await cached(
    'guest-userland',
    shortHash(key),
    async (tmp) => {
      await requireTools(['make', 'musl-gcc', 'apt-get', 'dpkg-source', 'patch'], 'the guest userland build');
      const sources = await fetchSources(recipe, recipe.components, ctx);
      const work = join(tmp, 'work');
      const out = join(tmp, 'out');
      await mkdir(out, { recursive: true });
      await mkdir(logDir, { recursive: true });
      const uapi = join(work, 'uapi-include');
      await uapiDir(recipe, uapi);
      const manifest: ComponentManifest[] = [];
      for (const src of sources) {
        const c = src.component;
        const t0 = Date.now();
        const log = join(logDir, `guest-userland-${shortHash(key)}-${c.name}.log`);
        await writeFile(log, `# ${c.package} ${c.version}\n`);
        ctx.progress.info(`guest userland: building ${c.name} ${c.version} (log: ${log})`);
        const tree = join(work, c.name);
        await unpackSource(src, tree, ctx, log);
        for (let i = 0; i < c.steps.length; i++) await runStep(c, i, tree, { jobs, uapi }, recipe.build_env ?? {}, ctx, log);
        const outputs: Record<string, string> = {};
        for (const [file, name] of Object.entries(c.outputs)) {
          const from = join(tree, file);
          await copyFile(from, join(out, name)).catch(() => {
            throw hostFailure(`${c.name}: the build did not produce ${file}`, { hint: `see ${log}` });
          });
          await chmod(join(out, name), 0o755);
          outputs[name] = await sha256File(join(out, name));
        }
        manifest.push({ name: c.name, package: c.package, version: c.version, dscSha256: c.dsc_sha256, outputs, buildSeconds: (Date.now() - t0) / 1000 });
      }
      await rm(work, { recursive: true, force: true });
      await writeFile(join(tmp, 'manifest.json'), `${JSON.stringify({ key, toolchain, components: manifest }, null, 2)}\n`);
      built = manifest;
    },
    { onWait: (pid) => ctx.progress.info(`guest userland: waiting for process ${pid}, which is building it`) },
  );
  const m = JSON.parse(await readFile(join(entry.dir, 'manifest.json'), 'utf8')) as { components: ComponentManifest[]; toolchain: Record<string, string> };
  const outputs: Record<string, string> = {};
  for (const c of m.components) for (const name of Object.keys(c.outputs)) outputs[name] = join(entry.dir, 'out', name);
  return { dir: entry.dir, outputs, components: built ?? m.components, toolchain: m.toolchain, hash: key, hit: entry.hit };
}
