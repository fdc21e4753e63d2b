// The guest image stage: assembles the base initramfs (our init, the static userland, an
// SSH host key, the layout from images/recipes/image.yaml, and any extra programs a caller
// asks for) into a cached, deterministic newc archive; and, per run, appends a tiny second
// archive with the run's authorized SSH key.
import { mkdir, readFile, writeFile, readdir } from 'node:fs/promises';
import { basename, dirname, extname, join, relative } from 'node:path';
import { badInput, hostFailure } from '../common/errors.js';
import { run, runOk } from '../common/proc.js';
import { cached } from '../common/cache.js';
import { hashValue, sha256, shortHash } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import { REPO_ROOT, writeOwnFile } from '../common/paths.js';
import type { StageContext } from '../common/context.js';
import { buildCpio, normalizeCpioPath, type CpioEntry } from './cpio.js';
import { inRepo, loadImageRecipe, type ImageRecipe } from './recipe.js';
import { buildUserland, type ComponentManifest } from './userland.js';

/** Bump when image assembly changes, so old cache entries are not reused. */
const IMAGE_BUILDER = 1;

/** A C program compiled with musl-gcc -static and placed in the image. */
export interface ExtraProgram {
  /** Short name, used in logs and the manifest. */
  name: string;
  /** C source files, absolute or relative to the repository root. */
  sources: string[];
  /** Absolute path in the guest, e.g. /usr/bin/ktrial-agent. */
  installPath: string;
  /** Compiler flags besides -static; default -O2 -Wall. */
  cflags?: string[];
}

export interface GuestImageRequest {
  extraPrograms?: ExtraProgram[];
  /** Parallel jobs for the userland build (default: the host's CPU count, at most 8). */
  jobs?: number;
}

export interface GuestImageManifest {
  components: ComponentManifest[];
  toolchain: Record<string, string>;
  init: { sources: string[]; sha256: string };
  extraPrograms: { name: string; installPath: string; sha256: string; sourcesSha256: string }[];
  hostKey: { type: string; fingerprint: string };
  entries: number;
  sizeBytes: number;
  sha256: string;
}

export interface GuestImage {
  /** The cached base initramfs (newc cpio, uncompressed). Never contains a client key. */
  initramfs: string;
  /** The image's SSH host public key, one OpenSSH line ("ssh-ed25519 AAAA..."). */
  hostKeyPublic: string;
  manifest: GuestImageManifest;
  /** Cache key of the image (covers userland, init, layout and extra programs). */
  hash: string;
  /** True when the image came from the cache. */
  hit: boolean;
}

/** Hash of a program's sources plus every header beside them (they may include each other). */
async function sourcesDigest(sources: string[]): Promise<{ digest: string; files: Record<string, string> }> {
  const files: Record<string, string> = {};
  const dirs = new Set<string>();
  for (const s of sources) {
    const p = inRepo(s);
    try {
      files[relative(REPO_ROOT, p)] = sha256(await readFile(p));
    } catch {
      throw badInput(`guest image: source file ${s} does not exist`, { hint: 'extra programs name C files relative to the repository root' });
    }
    dirs.add(dirname(p));
  }
  for (const d of dirs) {
    for (const n of (await readdir(d)).sort()) {
      if (extname(n) === '.h') files[relative(REPO_ROOT, join(d, n))] = sha256(await readFile(join(d, n)));
    }
  }
  return { digest: hashValue(files), files };
}

export async function compileStatic(sources: string[], cflags: string[], out: string, ctx: StageContext, what: string): Promise<void> {
  const r = await run('musl-gcc', ['-static', ...cflags, '-o', out, ...sources.map(inRepo)], { signal: ctx.signal });
  if (r.exitCode !== 0) {
    throw badInput(`guest image: compiling ${what} with musl-gcc failed`, { excerpt: r.all.trim().split('\n').slice(-25).join('\n'), hint: `fix the C source (${sources.join(', ')})` });
  }
}

async function busyboxApplets(busybox: string, skip: string[]): Promise<string[]> {
  const r = await runOk(busybox, ['--list-full'], {}, 'busybox --list-full');
  return r.stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !skip.includes(l))
    .sort();
}

/** Relative symlink target from the directory of `from` to `to` (both absolute guest paths). */
function relTarget(from: string, to: string): string {
  return relative(dirname(from), to) || basename(to);
}

async function hostKey(dropbearmulti: string, dir: string, ctx: StageContext): Promise<{ privateKey: Buffer; publicLine: string; fingerprint: string }> {
  const keyFile = join(dir, 'host_key');
  await runOk(dropbearmulti, ['dropbearkey', '-t', 'ed25519', '-f', keyFile], { signal: ctx.signal }, 'dropbearkey -t ed25519');
  const r = await runOk(dropbearmulti, ['dropbearkey', '-y', '-f', keyFile], { signal: ctx.signal }, 'dropbearkey -y');
  const line = r.stdout.split('\n').find((l) => l.startsWith('ssh-ed25519 '));
  const fp = r.stdout.split('\n').find((l) => l.startsWith('Fingerprint:'));
  if (!line) throw hostFailure('dropbearkey printed no public key', { excerpt: r.all });
  const [type, blob] = line.trim().split(/\s+/);
  return { privateKey: await readFile(keyFile), publicLine: `${type} ${blob}`, fingerprint: fp?.replace(/^Fingerprint:\s*/, '').trim() ?? '' };
}

/** The layout's fixed entries (directories, device nodes, files, links). */
export function layoutEntries(layout: ImageRecipe): CpioEntry[] {
  const entries: CpioEntry[] = [];
  for (const [p, mode] of Object.entries(layout.directories ?? {})) entries.push({ type: 'dir', path: p, mode });
  for (const [p, d] of Object.entries(layout.devices ?? {})) entries.push({ type: d.type === 'c' ? 'chardev' : 'blockdev', path: p, mode: d.mode, major: d.major, minor: d.minor });
  for (const [p, f] of Object.entries(layout.files ?? {})) entries.push({ type: 'file', path: p, mode: f.mode, data: f.text });
  for (const [p, target] of Object.entries(layout.links ?? {})) entries.push({ type: 'symlink', path: p, target });
  return entries;
}

export async function buildGuestImage(req: GuestImageRequest, ctx: StageContext): Promise<GuestImage> {
  return ctx.progress.phase('guest image', async (ph) => {
    await requireTools(['musl-gcc'], 'the guest image build');
    const userland = await buildUserland(ctx, req.jobs === undefined ? {} : { jobs: req.jobs });
    const { recipe: layout, text: layoutText } = await loadImageRecipe();
    const extras = req.extraPrograms ?? [];
    const seen = new Set<string>();
    for (const e of extras) {
      if (!/^[A-Za-z0-9._-]+$/.test(e.name)) throw badInput(`guest image: extra program name "${e.name}" must be a plain name`);
      if (!e.installPath.startsWith('/')) throw badInput(`guest image: extra program ${e.name}: installPath must be absolute`);
      const p = normalizeCpioPath(e.installPath);
      if (seen.has(p)) throw badInput(`guest image: two extra programs install to ${e.installPath}`);
      seen.add(p);
    }
    const init = await sourcesDigest(layout.init.sources);
    const extraDigests = await Promise.all(extras.map((e) => sourcesDigest(e.sources)));
    const key = hashValue({
      builder: IMAGE_BUILDER,
      userland: userland.hash,
      layout: layoutText,
      init: init.files,
      initCflags: layout.init.cflags ?? [],
      extras: extras.map((e, i) => ({ name: e.name, installPath: e.installPath, cflags: e.cflags ?? ['-O2', '-Wall'], sources: extraDigests[i]!.files })),
    });
    const entry = await cached('guest-image', shortHash(key), async (tmp) => {
      const bin = join(tmp, 'bin');
      await mkdir(bin);
      const entries: CpioEntry[] = layoutEntries(layout);

      await compileStatic(layout.init.sources, layout.init.cflags ?? ['-O2', '-Wall'], join(bin, 'init'), ctx, 'init');
      entries.push({ type: 'file', path: layout.init.path, mode: 0o755, data: await readFile(join(bin, 'init')) });

      const extraManifest: GuestImageManifest['extraPrograms'] = [];
      for (const [i, e] of extras.entries()) {
        const out = join(bin, `extra-${e.name}`);
        ctx.progress.info(`guest image: compiling ${e.name} for ${e.installPath}`);
        await compileStatic(e.sources, e.cflags ?? ['-O2', '-Wall'], out, ctx, e.name);
        const data = await readFile(out);
        entries.push({ type: 'file', path: e.installPath, mode: 0o755, data });
        extraManifest.push({ name: e.name, installPath: e.installPath, sha256: sha256(data), sourcesSha256: extraDigests[i]!.digest });
      }

      for (const [name, guestPath] of Object.entries(layout.binaries)) {
        const host = userland.outputs[name];
        if (!host) throw badInput(`images/recipes/image.yaml: binaries names "${name}", which the userland recipe does not build`);
        entries.push({ type: 'file', path: guestPath, mode: 0o755, data: await readFile(host) });
      }
      const bbPath = layout.binaries.busybox;
      const bbHost = userland.outputs.busybox;
      if (bbPath && bbHost) {
        const taken = new Set(entries.map((e) => normalizeCpioPath(e.path)));
        for (const applet of await busyboxApplets(bbHost, layout.busybox_skip_applets ?? [])) {
          const p = `/${applet}`;
          if (taken.has(normalizeCpioPath(p))) continue;
          taken.add(normalizeCpioPath(p));
          entries.push({ type: 'symlink', path: p, target: relTarget(p, bbPath) });
        }
      }

      const dropbear = userland.outputs.dropbearmulti;
      if (!dropbear) throw badInput('the userland recipe must build dropbearmulti (the image needs dropbearkey for its host key)');
      const key = await hostKey(dropbear, tmp, ctx);
      entries.push({ type: 'file', path: layout.host_key.path, mode: 0o600, data: key.privateKey });
      await writeFile(join(tmp, 'host_key.pub'), `${key.publicLine}\n`);

      const cpio = buildCpio(entries);
      await writeFile(join(tmp, 'base.cpio'), cpio);
      const manifest: GuestImageManifest = {
        components: userland.components,
        toolchain: userland.toolchain,
        init: { sources: layout.init.sources, sha256: sha256(await readFile(join(bin, 'init'))) },
        extraPrograms: extraManifest,
        hostKey: { type: layout.host_key.type, fingerprint: key.fingerprint },
        entries: entries.length,
        sizeBytes: cpio.length,
        sha256: sha256(cpio),
      };
      await writeFile(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    });
    if (entry.hit) ph.markCached(shortHash(key));
    const manifest = JSON.parse(await readFile(join(entry.dir, 'manifest.json'), 'utf8')) as GuestImageManifest;
    const hostKeyPublic = (await readFile(join(entry.dir, 'host_key.pub'), 'utf8')).trim();
    return { initramfs: join(entry.dir, 'base.cpio'), hostKeyPublic, manifest, hash: key, hit: entry.hit };
  });
}

/** The per-run archive: /root/.ssh/authorized_keys with the run's client key. */
export function runOverlayEntries(clientPublicKey: string): CpioEntry[] {
  const line = clientPublicKey.trim();
  if (!/^ssh-[a-z0-9-]+ [A-Za-z0-9+/=]+( .*)?$/.test(line) || line.includes('\n')) {
    throw badInput('the client public key must be one OpenSSH line ("ssh-ed25519 AAAA...")');
  }
  return [
    { type: 'dir', path: '/root', mode: 0o700 },
    { type: 'dir', path: '/root/.ssh', mode: 0o700 },
    { type: 'file', path: '/root/.ssh/authorized_keys', mode: 0o600, data: `${line}\n` },
  ];
}

/**
 * Write <dir>/initramfs.cpio: the base image followed by the per-run archive holding the
 * client's public key. The kernel unpacks concatenated archives in order.
 */
export async function writeRunOverlay(image: Pick<GuestImage, 'initramfs'>, clientPublicKey: string, dir: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  const out = join(dir, 'initramfs.cpio');
  await writeOwnFile(out, await readFile(image.initramfs));
  await writeOwnFile(out, buildCpio(runOverlayEntries(clientPublicKey)), 'append');
  return out;
}
