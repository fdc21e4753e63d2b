// Stage 1: a source spec (from the trial, or overridden on the command line) becomes a
// pristine kernel tree on disk with a content identity. Tarballs and git refs are unpacked
// into the content-addressed cache; a local tree is used in place and never written to.
import { createWriteStream } from 'node:fs';
import { readdir, readFile, rename, rm, stat, writeFile, mkdir } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { cached, cacheRoot } from '../common/cache.js';
import type { StageContext } from '../common/context.js';
import { badInput, hostFailure } from '../common/errors.js';
import { createHash } from 'node:crypto';
import { digestFile, sha256File } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import { run, runOk } from '../common/proc.js';
import { eraFor, versionString, type KernelEra, type KernelVersion } from '../eras/eras.js';
import type { SourceSpec } from '../trial/trial.js';

export interface SourceTree {
  /** The pristine tree; read it, never write it. */
  dir: string;
  /** The spec it came from; `rememberSource` records it once a kernel was built from it. */
  spec: SourceSpec;
  /** Identity of the content: a tarball's sha256, a git commit, a package version, or a tree fingerprint. */
  id: string;
  /** How the tree was obtained, for the manifest. */
  origin: Record<string, string>;
  version: KernelVersion;
  era: KernelEra;
  /**
   * A local tree changes under the same path: every file's size and mtime, so the patch
   * stage can bring its work tree up to date file by file instead of copying it again.
   */
  listing?: TreeListing;
}

/** Relative path -> "size mtime" of every file of a tree (not .git). */
export type TreeListing = Map<string, string>;

const envName = (name: string) => `KTRIAL_SOURCE_${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
const knownFile = (name: string) => join(cacheRoot(), 'sources', 'known', `${name}.json`);

/** Turn a --source argument into a spec, keeping the trial's name and checksum pin. */
export function specFromArgument(arg: string, trialSpec: SourceSpec): SourceSpec {
  const name = trialSpec.name;
  const pin = trialSpec.kind === 'tarball' && trialSpec.sha256 ? { sha256: trialSpec.sha256 } : {};
  if (arg.startsWith('debian:')) return { kind: 'debian', name, pkg: arg.slice('debian:'.length) };
  if (/^[a-z]+:\/\//.test(arg) && /\.tar(\.(gz|bz2|xz))?$|\.tgz$/.test(arg)) return { kind: 'tarball', name, tarball: arg, ...pin };
  const at = /^(.*)@([^@/]+)$/.exec(arg);
  if (at) return { kind: 'git', name, git: /^[a-z]+:\/\//.test(at[1]!) ? at[1]! : resolve(at[1]!), ref: at[2]! };
  if (/\.(tar(\.(gz|bz2|xz))?|tgz)$/.test(arg)) return { kind: 'tarball', name, tarball: resolve(arg), ...pin };
  return { kind: 'path', name, path: resolve(arg) };
}

/** The spec to use: --source, then $KTRIAL_SOURCE_<NAME>, then the trial's own. */
export function effectiveSpec(trialSpec: SourceSpec, override: string | undefined): { spec: SourceSpec; via: string } {
  if (override) return { spec: specFromArgument(override, trialSpec), via: '--source' };
  const env = process.env[envName(trialSpec.name)];
  if (env) return { spec: specFromArgument(env, trialSpec), via: envName(trialSpec.name) };
  return { spec: trialSpec, via: 'trial' };
}

export async function readKernelVersion(dir: string): Promise<KernelVersion> {
  let text: string;
  try {
    text = await readFile(join(dir, 'Makefile'), 'utf8');
  } catch {
    throw badInput(`${dir} is not a kernel tree: it has no top-level Makefile`, { hint: 'point --source at the top of a Linux source tree (the directory holding Makefile, kernel/, arch/)' });
  }
  const field = (k: string) => new RegExp(`^${k}[ \\t]*=[ \\t]*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const [v, p, s] = [field('VERSION'), field('PATCHLEVEL'), field('SUBLEVEL')];
  if (!v || !p || !/^\d+$/.test(v) || !/^\d+$/.test(p)) {
    throw badInput(`${dir} is not a kernel tree: its Makefile has no VERSION/PATCHLEVEL`, { hint: 'point --source at the top of a Linux source tree' });
  }
  try {
    await stat(join(dir, 'kernel'));
  } catch {
    throw badInput(`${dir} is not a kernel tree: it has no kernel/ directory`, { hint: 'point --source at the top of a Linux source tree' });
  }
  return { major: Number(v), minor: Number(p), sub: Number(s || 0), extra: field('EXTRAVERSION') ?? '' };
}

/**
 * A cheap identity for a local tree: every file's path, size and mtime, in sorted
 * depth-first order. The files of one directory are stat'ed concurrently (one stat at a time
 * made this the slowest step of a cached 2.6.20 run: ~21,000 files, 1-3 s on a loaded
 * 2-core host); directories are still walked one by one, which bounds memory.
 */
/** A local tree's listing and a fingerprint of it: a changed file changes its size or mtime. */
async function listTree(dir: string): Promise<{ fingerprint: string; listing: TreeListing }> {
  const h = createHash('sha256');
  const listing: TreeListing = new Map();
  async function walk(rel: string): Promise<void> {
    const entries = (await readdir(join(dir, rel), { withFileTypes: true })).filter((e) => !(rel === '' && e.name === '.git'));
    entries.sort((a, b) => (a.name < b.name ? -1 : 1));
    const path = (name: string) => (rel ? `${rel}/${name}` : name);
    const stats = await Promise.all(entries.map((e) => (e.isDirectory() ? undefined : stat(join(dir, path(e.name))).catch(() => null))));
    for (const [i, e] of entries.entries()) {
      const st = stats[i];
      if (st === undefined) await walk(path(e.name));
      else if (st) {
        const facts = `${st.size} ${Math.floor(st.mtimeMs)}`;
        listing.set(path(e.name), facts);
        h.update(`${path(e.name)}\0${st.size}\0${Math.floor(st.mtimeMs)}\n`);
      }
    }
  }
  await walk('');
  return { fingerprint: h.digest('hex'), listing };
}

/** Unpack a tarball into dest, dropping its single top-level directory. */
async function unpackTarball(tarball: string, dest: string, ctx: StageContext): Promise<void> {
  const raw = join(dest, '.unpack');
  await mkdir(raw, { recursive: true });
  await runOk('tar', ['-xf', tarball, '-C', raw], { signal: ctx.signal }, `unpacking ${tarball}`);
  const top = await readdir(raw);
  const inner = top.length === 1 ? join(raw, top[0]!) : raw;
  for (const name of await readdir(inner)) await rename(join(inner, name), join(dest, name));
  await rm(raw, { recursive: true, force: true });
}

async function download(url: string, dest: string, ctx: StageContext): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { signal: ctx.signal });
  } catch (err) {
    throw hostFailure(`cannot download ${url}: ${(err as Error).cause ?? (err as Error).message}`, {
      hint: 'without network, pass a local copy: --source /path/to/the.tar.bz2 (checked against the pinned sha256), a tree --source /path/to/linux, a git repository --source /path/to/repo@REF, or set the environment variable named in the trial docs',
    });
  }
  if (!res.ok || !res.body) throw hostFailure(`cannot download ${url}: HTTP ${res.status}`, { hint: 'pass a local copy with --source' });
  const tmp = `${dest}.part`;
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(tmp));
  await rename(tmp, dest);
}

async function fromTarball(spec: Extract<SourceSpec, { kind: 'tarball' }>, ctx: StageContext): Promise<Omit<SourceTree, 'version' | 'era' | 'spec'>> {
  let file = spec.tarball;
  if (/^[a-z]+:\/\//.test(file)) {
    const dlDir = join(cacheRoot(), 'downloads');
    await mkdir(dlDir, { recursive: true });
    file = join(dlDir, basename(new URL(spec.tarball).pathname));
    if (!(await stat(file).catch(() => undefined))) {
      if (!spec.sha256) throw badInput(`the tarball ${spec.tarball} has no pinned sha256`, { hint: 'add `sha256:` under source in the trial' });
      await download(spec.tarball, file, ctx);
    }
  }
  if (!(await stat(file).catch(() => undefined))) throw badInput(`tarball ${file} does not exist`, { hint: 'check the path given to --source or in the trial' });
  const actual = await sha256File(file);
  if (spec.sha256 && actual !== spec.sha256) {
    // A download that does not match is not kept: the next run fetches it again.
    const downloaded = file !== spec.tarball;
    if (downloaded) await rm(file, { force: true });
    throw badInput(`checksum mismatch for ${downloaded ? spec.tarball : file}: sha256 is ${actual}, the trial pins ${spec.sha256}`, {
      hint: downloaded
        ? 'the download was corrupt or a different release and was not kept; run again to download it again, or correct the pin in the trial if the new file is the one you mean'
        : 'the file is corrupt or a different release; use the right tarball, or correct the pin in the trial if this file is the one you mean',
    });
  }
  const entry = await cached('sources', actual, (tmp) => unpackTarball(file, tmp, ctx), { onWait: (pid) => ctx.progress.info(`waiting for process ${pid}, which is unpacking the same source`) });
  return { dir: entry.dir, id: `sha256:${actual}`, origin: { kind: 'tarball', file, sha256: actual, ...(spec.tarball !== file ? { url: spec.tarball } : {}) } };
}

async function fromGit(spec: Extract<SourceSpec, { kind: 'git' }>, ctx: StageContext): Promise<Omit<SourceTree, 'version' | 'era' | 'spec'>> {
  await requireTools(['git'], 'a git source');
  const rev = await run('git', ['--git-dir', await gitDir(spec.git), 'rev-parse', '--verify', `${spec.ref}^{commit}`], { signal: ctx.signal });
  if (rev.exitCode !== 0) {
    throw badInput(`git ref ${spec.ref} is not a commit in ${spec.git}: ${rev.stderr.trim()}`, { hint: 'name a commit, tag or branch that exists in that repository' });
  }
  const commit = rev.stdout.trim();
  const gd = await gitDir(spec.git);
  const entry = await cached('sources', `git-${commit}`, async (tmp) => {
    const archive = join(tmp, '.archive.tar');
    await runOk('git', ['--git-dir', gd, 'archive', '--format=tar', '-o', archive, commit], { signal: ctx.signal }, `git archive ${commit}`);
    await runOk('tar', ['-xf', archive, '-C', tmp], { signal: ctx.signal });
    await rm(archive, { force: true });
  });
  return { dir: entry.dir, id: `git:${commit}`, origin: { kind: 'git', repository: spec.git, ref: spec.ref, commit } };
}

async function gitDir(repo: string): Promise<string> {
  if (/^[a-z]+:\/\//.test(repo)) throw badInput(`remote git repositories are not cloned by ktrial: ${repo}`, { hint: 'clone it yourself and pass --source /path/to/clone@REF' });
  if (await stat(join(repo, '.git')).catch(() => undefined)) return join(repo, '.git');
  if (await stat(join(repo, 'objects')).catch(() => undefined)) return repo;
  throw badInput(`${repo} is not a git repository`, { hint: 'pass a repository (its work tree or its .git directory) followed by @REF' });
}

async function fromDebian(spec: Extract<SourceSpec, { kind: 'debian' }>, ctx: StageContext): Promise<Omit<SourceTree, 'version' | 'era' | 'spec'>> {
  const q = await run('dpkg-query', ['-W', '-f', '${Version}', spec.pkg]);
  if (q.exitCode !== 0 || !q.stdout.trim()) {
    throw hostFailure(`Debian package ${spec.pkg} is not installed`, { hint: `install it: sudo apt-get install -y ${spec.pkg}   (or sudo npx ktrial setup)` });
  }
  const version = q.stdout.trim();
  const files = (await readdir('/usr/src')).filter((f) => f.startsWith(`${spec.pkg}.tar`));
  if (files.length === 0) throw hostFailure(`${spec.pkg} is installed but /usr/src has no ${spec.pkg}.tar.*`, { hint: `reinstall it: sudo apt-get install --reinstall ${spec.pkg}` });
  const tarball = join('/usr/src', files[0]!);
  const entry = await cached('sources', `debian-${spec.pkg}-${version.replace(/[^A-Za-z0-9.+-]/g, '_')}`, async (tmp) => {
    await verifyDebianFile(spec.pkg, tarball);
    await unpackTarball(tarball, tmp, ctx);
  });
  return { dir: entry.dir, id: `debian:${spec.pkg}=${version}`, origin: { kind: 'debian', package: spec.pkg, version, file: tarball } };
}

/** Check the tarball against dpkg's recorded md5 before unpacking it. */
async function verifyDebianFile(pkg: string, file: string): Promise<void> {
  const sums = await readFile(`/var/lib/dpkg/info/${pkg}.md5sums`, 'utf8').catch(() => '');
  const rel = file.replace(/^\//, '');
  const line = sums.split('\n').find((l) => l.endsWith(` ${rel}`));
  if (!line) return;
  const want = line.split(/\s+/)[0];
  const got = await digestFile(file, 'md5');
  if (got !== want) throw hostFailure(`checksum mismatch for ${file}: md5 ${got}, dpkg recorded ${want}`, { hint: `reinstall the package: sudo apt-get install --reinstall ${pkg}` });
}

async function fromPath(spec: Extract<SourceSpec, { kind: 'path' }>): Promise<Omit<SourceTree, 'version' | 'era' | 'spec'>> {
  const st = await stat(spec.path).catch(() => undefined);
  if (!st?.isDirectory()) throw badInput(`source path ${spec.path} is not a directory`, { hint: 'pass the top of a Linux source tree, a tarball, or REPO@REF' });
  const { fingerprint, listing } = await listTree(spec.path);
  return { dir: spec.path, id: `tree:${fingerprint}`, origin: { kind: 'path', path: spec.path, fingerprint }, listing };
}

/** Record where a named source was last built from, so later runs (and CI) can find it again. */
export async function rememberSource(spec: SourceSpec): Promise<void> {
  const f = knownFile(spec.name);
  await mkdir(join(cacheRoot(), 'sources', 'known'), { recursive: true });
  await writeFile(`${f}.tmp-${process.pid}`, JSON.stringify(spec, null, 2));
  await rename(`${f}.tmp-${process.pid}`, f);
}

export async function knownSpec(name: string): Promise<SourceSpec | undefined> {
  try {
    return JSON.parse(await readFile(knownFile(name), 'utf8')) as SourceSpec;
  } catch {
    return undefined;
  }
}

export async function resolveSource(trialSpec: SourceSpec, override: string | undefined, ctx: StageContext): Promise<SourceTree> {
  let { spec, via } = effectiveSpec(trialSpec, override);
  // A trial's default remote tarball is not reachable offline; a tree this machine has used before is.
  if (via === 'trial' && spec.kind === 'tarball' && /^[a-z]+:\/\//.test(spec.tarball)) {
    const known = await knownSpec(spec.name);
    const downloaded = join(cacheRoot(), 'downloads', basename(new URL(spec.tarball).pathname));
    if (known && !(await stat(downloaded).catch(() => undefined))) {
      spec = known;
      via = `the cache's record of ${spec.name}`;
    }
  }
  ctx.progress.info(`source: ${describeSpec(spec)} (from ${via})`);
  let base: Omit<SourceTree, 'version' | 'era' | 'spec'>;
  switch (spec.kind) {
    case 'tarball':
      await requireTools(['tar'], 'unpacking a tarball');
      base = await fromTarball(spec, ctx);
      break;
    case 'git':
      base = await fromGit(spec, ctx);
      break;
    case 'debian':
      base = await fromDebian(spec, ctx);
      break;
    case 'path':
      base = await fromPath(spec);
      break;
  }
  const version = await readKernelVersion(base.dir);
  const era = eraFor(version);
  if (!era) throw badInput(`kernel ${versionString(version)} is older than any era ktrial knows (the oldest is 2.6.20)`, { hint: 'use a 2.6.20 or newer x86_64 tree' });
  return { ...base, spec, origin: { ...base.origin, via }, version, era };
}

/**
 * A --source value naming exactly the source a kernel was built from: a git source by its
 * commit rather than its ref. A tree is named by its path (its fingerprint is in the
 * manifest), and a Debian package by its name (the version is in the manifest: the archive
 * keeps only the current one).
 */
export function exactSourceArgument(origin: Record<string, string>): string | undefined {
  switch (origin.kind) {
    case 'git':
      return `${origin.repository}@${origin.commit}`;
    case 'tarball':
      return origin.url ?? origin.file;
    case 'path':
      return origin.path;
    case 'debian':
      return `debian:${origin.package}`;
    default:
      return undefined;
  }
}

export function describeSpec(s: SourceSpec): string {
  switch (s.kind) {
    case 'tarball':
      return `tarball ${s.tarball}`;
    case 'git':
      return `git ${s.git} @ ${s.ref}`;
    case 'path':
      return `tree ${s.path}`;
    case 'debian':
      return `Debian package ${s.pkg}`;
  }
}

export const sourceEnvVar = envName;
