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
import { badInput, hostFailure, type Where } from '../common/errors.js';
import { createHash } from 'node:crypto';
import { digestFile, sha256File } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import { isUrl, urlOrPath } from '../common/paths.js';
import { run, runOk } from '../common/proc.js';
import { eraFor, versionString, type KernelEra, type KernelVersion } from '../eras/eras.js';

/** What each kind of source adds to its spec, and to its origin (how a tree was obtained, for the manifest). */
interface KindFields {
  tarball: { spec: { tarball: string; sha256?: string }; origin: { file: string; sha256: string; url?: string } };
  git: { spec: { git: string; ref: string }; origin: { repository: string; ref: string; commit: string } };
  path: { spec: { path: string }; origin: { path: string; fingerprint: string } };
  debian: { spec: { pkg: string }; origin: { package: string; version: string; file: string } };
}
export type SourceKindName = keyof KindFields;
// Distributive, so that the union of kinds gives the union of specs and of origins.
type SpecOf<K extends SourceKindName> = K extends SourceKindName ? { kind: K; name: string } & KindFields[K]['spec'] : never;
type OriginOf<K extends SourceKindName> = K extends SourceKindName ? { kind: K } & KindFields[K]['origin'] : never;
export type SourceSpec = SpecOf<SourceKindName>;
export type SourceOrigin = OriginOf<SourceKindName>;

export interface SourceTree {
  /** The pristine tree; read it, never write it. */
  dir: string;
  /** The spec it came from; `rememberSource` records it once a kernel was built from it. */
  spec: SourceSpec;
  /** Identity of the content: a tarball's sha256, a git commit, a package version, or a tree fingerprint. */
  id: string;
  /** How the tree was obtained and which setting chose it, for the manifest. */
  origin: SourceOrigin & { via: string };
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
  const kind = ARGUMENT_ORDER.find((k) => SOURCE_KINDS[k].recognises?.(arg)) ?? 'path';
  return SOURCE_KINDS[kind].fromArgument(arg, trialSpec);
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
  const version = versionFromMakefile(text);
  if (!version) throw badInput(`${dir} is not a kernel tree: its Makefile has no VERSION/PATCHLEVEL`, { hint: 'point --source at the top of a Linux source tree' });
  try {
    await stat(join(dir, 'kernel'));
  } catch {
    throw badInput(`${dir} is not a kernel tree: it has no kernel/ directory`, { hint: 'point --source at the top of a Linux source tree' });
  }
  return version;
}

/** The version a kernel Makefile's VERSION, PATCHLEVEL, SUBLEVEL and EXTRAVERSION lines give. */
function versionFromMakefile(text: string): KernelVersion | undefined {
  const field = (k: string) => new RegExp(`^${k}[ \\t]*=[ \\t]*(.*)$`, 'm').exec(text)?.[1]?.trim();
  const [v, p, s] = [field('VERSION'), field('PATCHLEVEL'), field('SUBLEVEL')];
  if (!v || !p || !/^\d+$/.test(v) || !/^\d+$/.test(p)) return undefined;
  return { major: Number(v), minor: Number(p), sub: Number(s || 0), extra: field('EXTRAVERSION') ?? '' };
}

/**
 * A local tree's listing and a cheap identity for it: every file's path, size and mtime, in
 * sorted depth-first order (a changed file changes its size or mtime). The files of one
 * directory are stat'ed concurrently (one stat at a time made this the slowest step of a
 * cached 2.6.20 run: ~21,000 files, 1-3 s on a loaded 2-core host); directories are still
 * walked one by one, which bounds memory.
 */
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

/** Where a downloaded tarball is kept in the cache. */
const downloadPath = (url: string) => join(cacheRoot(), 'downloads', basename(new URL(url).pathname));

/** A tree obtained by one kind of source, before its version is read. */
interface ObtainedTree<K extends SourceKindName> {
  dir: string;
  /** Identity of the content: a tarball's sha256, a git commit, a package version, or a tree fingerprint. */
  id: string;
  origin: OriginOf<K>;
  listing?: TreeListing;
}

async function fromTarball(spec: SpecOf<'tarball'>, ctx: StageContext): Promise<ObtainedTree<'tarball'>> {
  await requireTools(['tar'], 'unpacking a tarball');
  let file = spec.tarball;
  if (isUrl(file)) {
    await mkdir(join(cacheRoot(), 'downloads'), { recursive: true });
    file = downloadPath(spec.tarball);
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

async function fromGit(spec: SpecOf<'git'>, ctx: StageContext): Promise<ObtainedTree<'git'>> {
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
  if (isUrl(repo)) throw badInput(`remote git repositories are not cloned by ktrial: ${repo}`, { hint: 'clone it yourself and pass --source /path/to/clone@REF' });
  if (await stat(join(repo, '.git')).catch(() => undefined)) return join(repo, '.git');
  if (await stat(join(repo, 'objects')).catch(() => undefined)) return repo;
  throw badInput(`${repo} is not a git repository`, { hint: 'pass a repository (its work tree or its .git directory) followed by @REF' });
}

async function fromDebian(spec: SpecOf<'debian'>, ctx: StageContext): Promise<ObtainedTree<'debian'>> {
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

async function fromPath(spec: SpecOf<'path'>): Promise<ObtainedTree<'path'>> {
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
  if (via === 'trial' && spec.kind === 'tarball' && isUrl(spec.tarball)) {
    const known = await knownSpec(spec.name);
    if (known && !(await stat(downloadPath(spec.tarball)).catch(() => undefined))) {
      spec = known;
      via = `the cache's record of ${spec.name}`;
    }
  }
  ctx.progress.info(`source: ${describeSpec(spec)} (from ${via})`);
  const base = await kindOf(spec.kind).obtain(spec, ctx);
  const version = await readKernelVersion(base.dir);
  const era = eraFor(version);
  if (!era) throw badInput(`kernel ${versionString(version)} is older than any era ktrial knows (the oldest is 2.6.20)`, { hint: 'use a 2.6.20 or newer x86_64 tree' });
  return { ...base, spec, origin: { ...base.origin, via }, version, era };
}

/**
 * A --source value naming exactly the source a kernel was built from (see each kind's
 * `exact`). A manifest is read back from the cache untyped, so an unknown kind gives none.
 */
export function exactSourceArgument(origin: SourceOrigin): string | undefined {
  return (kindOf(origin.kind) as SourceKind<SourceKindName> | undefined)?.exact(origin);
}

export function describeSpec(s: SourceSpec): string {
  return kindOf(s.kind).describe(s);
}

/** A trial's `source:` mapping: one key per kind, the name, and a tarball's pin or a git ref. */
export interface TrialSourceFields {
  name?: string;
  tarball?: string;
  sha256?: string;
  git?: string;
  ref?: string;
  path?: string;
  debian?: string;
}

/** Everything ktrial knows about one kind of source. */
interface SourceKind<K extends SourceKindName> {
  /** The trial's source of this kind; relative paths are relative to the trial file's directory. */
  fromTrial(fields: TrialSourceFields, name: string, dir: string, where: (key: keyof TrialSourceFields) => Where): SpecOf<K>;
  /** Whether a --source argument names a source of this kind; absent for a tree, which is what no other kind recognises. */
  recognises?(arg: string): boolean;
  /** A --source argument as a spec; it keeps the trial's name (and a tarball the trial's pin). */
  fromArgument(arg: string, trialSpec: SourceSpec): SpecOf<K>;
  /** The pristine tree, its identity and its origin. */
  obtain(spec: SpecOf<K>, ctx: StageContext): Promise<ObtainedTree<K>>;
  /** For the progress line. */
  describe(spec: SpecOf<K>): string;
  /** A --source value naming exactly what was built, for the re-run line. */
  exact(origin: OriginOf<K>): string;
  /** The kernel version, read without obtaining the tree (for a run without a trial); undefined when it cannot be told. */
  version(spec: SpecOf<K>): Promise<KernelVersion | undefined>;
}

const TARBALL_NAME = /\.(tar(\.(gz|bz2|xz))?|tgz)$/;
const REPO_AT_REF = /^(.*)@([^@/]+)$/;

const SOURCE_KINDS: { [K in SourceKindName]: SourceKind<K> } = {
  tarball: {
    fromTrial: (f, name, dir) => ({ kind: 'tarball', name, tarball: urlOrPath(f.tarball!, dir), ...(f.sha256 ? { sha256: f.sha256 } : {}) }),
    // A local name of the form REPO@REF is a git source, whatever its ref ends with.
    recognises: (arg) => TARBALL_NAME.test(arg) && (isUrl(arg) || !REPO_AT_REF.test(arg)),
    fromArgument: (arg, trialSpec) => ({ kind: 'tarball', name: trialSpec.name, tarball: urlOrPath(arg), ...(trialSpec.kind === 'tarball' && trialSpec.sha256 ? { sha256: trialSpec.sha256 } : {}) }),
    obtain: fromTarball,
    describe: (s) => `tarball ${s.tarball}`,
    exact: (o) => o.url ?? o.file,
    version: async (s) => {
      const m = /linux-(\d+)\.(\d+)(?:\.(\d+))?\.(tar|tgz)/.exec(s.tarball);
      return m ? { major: Number(m[1]), minor: Number(m[2]), sub: Number(m[3] ?? 0), extra: '' } : undefined;
    },
  },
  git: {
    fromTrial: (f, name, dir, where) => {
      if (!f.ref) throw badInput('a git source needs a ref (commit, tag or branch)', { where: where('git'), hint: 'add `ref:` under source' });
      return { kind: 'git', name, git: urlOrPath(f.git!, dir), ref: f.ref };
    },
    recognises: (arg) => REPO_AT_REF.test(arg),
    fromArgument: (arg, trialSpec) => {
      const [, repo, ref] = REPO_AT_REF.exec(arg)!;
      return { kind: 'git', name: trialSpec.name, git: urlOrPath(repo!), ref: ref! };
    },
    obtain: fromGit,
    describe: (s) => `git ${s.git} @ ${s.ref}`,
    // The commit, not the ref: a ref moves.
    exact: (o) => `${o.repository}@${o.commit}`,
    version: async (s) => {
      const r = await run('git', ['-C', s.git, 'show', `${s.ref}:Makefile`]);
      return r.exitCode === 0 ? versionFromMakefile(r.stdout) : undefined;
    },
  },
  path: {
    fromTrial: (f, name, dir) => ({ kind: 'path', name, path: resolve(dir, f.path!) }),
    fromArgument: (arg, trialSpec) => ({ kind: 'path', name: trialSpec.name, path: resolve(arg) }),
    obtain: (spec) => fromPath(spec),
    describe: (s) => `tree ${s.path}`,
    // The tree's path; its fingerprint is in the manifest.
    exact: (o) => o.path,
    version: (s) => readKernelVersion(s.path),
  },
  debian: {
    fromTrial: (f, name) => ({ kind: 'debian', name, pkg: f.debian! }),
    recognises: (arg) => arg.startsWith('debian:'),
    fromArgument: (arg, trialSpec) => ({ kind: 'debian', name: trialSpec.name, pkg: arg.slice('debian:'.length) }),
    obtain: fromDebian,
    describe: (s) => `Debian package ${s.pkg}`,
    // The package's name; its version is in the manifest (the archive keeps only the current one).
    exact: (o) => `debian:${o.package}`,
    version: async (s) => {
      const m = /^linux-source-(\d+)\.(\d+)$/.exec(s.pkg);
      return m ? { major: Number(m[1]), minor: Number(m[2]), sub: 0, extra: '' } : undefined;
    },
  },
};

/** The kernel version a --source argument names, read without obtaining the tree; undefined when it cannot be told. */
export function versionOfArgument(arg: string): Promise<KernelVersion | undefined> {
  const spec = specFromArgument(arg, { kind: 'path', name: 'source', path: '.' });
  return (kindOf(spec.kind) as SourceKind<typeof spec.kind>).version(spec as never);
}

/** The kinds a trial's source may name, in the order messages list them. */
export const SOURCE_KIND_NAMES = Object.keys(SOURCE_KINDS) as SourceKindName[];

/** The order in which the kinds look at a --source argument: the first that recognises it takes it. */
const ARGUMENT_ORDER = ['debian', 'tarball', 'git'] as const;

const kindOf = <K extends SourceKindName>(kind: K): SourceKind<K> => SOURCE_KINDS[kind];

/** The trial's source of the given kind as a spec. */
export function sourceFromTrial(kind: SourceKindName, fields: TrialSourceFields, name: string, dir: string, where: (key: keyof TrialSourceFields) => Where): SourceSpec {
  return SOURCE_KINDS[kind].fromTrial(fields, name, dir, where);
}

export const sourceEnvVar = envName;
