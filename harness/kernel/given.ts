// A kernel built elsewhere: `--kernel bzImage` (with `--config FILE`, or the config the
// kernel carries itself with CONFIG_IKCONFIG) or `--build-dir DIR` (a tree's own O= build:
// its bzImage, .config and vmlinux). Nothing is built; the release and era come from the
// bzImage's own header, and what was given is recorded by sha256.
import { access, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { inflateRawSync, constants as zlibConstants } from 'node:zlib';
import { badInput } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import { KernelConfig } from '../config/kconfig.js';
import { eraFor, parseVersion, versionString } from '../eras/eras.js';
import type { KernelArtifacts, KernelManifest } from './pipeline.js';

/** What the user gave instead of a build. */
export interface GivenKernelSpec {
  bzImage?: string;
  buildDir?: string;
  config?: string;
}

/** Where the config that judges the suites' requirements came from. */
export type GivenConfigSource = '--config' | 'build-dir' | 'ikconfig' | 'none';

const exists = (p: string) => access(p).then(() => true, () => false);

/**
 * The kernel release a bzImage states in its setup header (boot protocol 2.0 on, so every
 * x86 kernel ktrial boots): "HdrS" at 0x202, and at 0x20e the offset, less 0x200, of the
 * version string "6.1.192 (user@host) #1 ...".
 */
export function bzImageRelease(image: Buffer): string | undefined {
  if (image.length < 0x210 || image.toString('latin1', 0x202, 0x206) !== 'HdrS') return undefined;
  const at = image.readUInt16LE(0x20e) + 0x200;
  if (at >= image.length) return undefined;
  const end = image.indexOf(0, at);
  return image.toString('latin1', at, end < 0 ? undefined : end).split(' ')[0];
}

// Compressed payloads a bzImage may carry, by their magic, with a command that unpacks a
// stream that has trailing bytes after it (the payload is followed by its size and padding).
const PAYLOADS: { magic: Buffer; unpack?: string[] }[] = [
  { magic: Buffer.from([0x1f, 0x8b, 0x08]) },
  { magic: Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]), unpack: ['xz', '-dc', '--single-stream'] },
  { magic: Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), unpack: ['zstd', '-dc'] },
  { magic: Buffer.from('BZh'), unpack: ['bzip2', '-dc'] },
  { magic: Buffer.from([0x5d, 0x00, 0x00]), unpack: ['xz', '-dc', '--format=lzma'] },
];

/** A gzip member's content, tolerating bytes after it (inflate stops at the end of the deflate stream). */
function gunzipLenient(data: Buffer): Buffer | undefined {
  if (data[0] !== 0x1f || data[1] !== 0x8b || data[2] !== 8) return undefined;
  const flags = data[3]!;
  let p = 10;
  if (flags & 4) p += 2 + data.readUInt16LE(p);
  if (flags & 8) p = data.indexOf(0, p) + 1;
  if (flags & 16) p = data.indexOf(0, p) + 1;
  if (flags & 2) p += 2;
  try {
    return inflateRawSync(data.subarray(p), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch {
    return undefined;
  }
}

/** The text between IKCFG_ST and IKCFG_ED in an unpacked kernel: a gzipped .config. */
function ikconfigIn(kernel: Buffer): string | undefined {
  const start = kernel.indexOf('IKCFG_ST');
  if (start < 0) return undefined;
  const end = kernel.indexOf('IKCFG_ED', start);
  const text = gunzipLenient(kernel.subarray(start + 8, end < 0 ? undefined : end));
  return text?.toString('utf8');
}

/**
 * The .config a kernel image carries (CONFIG_IKCONFIG): the bzImage's compressed payload is
 * found by its magic, unpacked, and searched for the IKCFG_ST marker. Undefined when the
 * kernel carries none.
 */
export async function extractIkconfig(image: Buffer): Promise<string | undefined> {
  for (const { magic, unpack } of PAYLOADS) {
    for (let at = image.indexOf(magic); at >= 0; at = image.indexOf(magic, at + 1)) {
      let unpacked: Buffer | undefined;
      if (!unpack) unpacked = gunzipLenient(image.subarray(at));
      else {
        const r = await execa(unpack[0]!, unpack.slice(1), { input: image.subarray(at), encoding: 'buffer', reject: false, maxBuffer: 1 << 30 }).catch(() => undefined);
        unpacked = r?.stdout.length ? Buffer.from(r.stdout) : undefined;
      }
      // A magic found by chance unpacks to nothing much; the kernel is megabytes.
      if (!unpacked || unpacked.length < 1 << 20) continue;
      return ikconfigIn(unpacked);
    }
  }
  return undefined;
}

/**
 * The given kernel as the run's kernel, with its config if there is one. Without one, the
 * guest's devices are chosen from the trial's fragments (what the kernel was presumably
 * built with), and the suites' requirements cannot be judged: `unjudged` says why.
 */
export async function givenKernel(spec: GivenKernelSpec, outDir: string, trialFragments: readonly string[]): Promise<KernelArtifacts & { configFrom: GivenConfigSource }> {
  let bzImagePath = spec.bzImage && resolve(spec.bzImage);
  let configPath = spec.config && resolve(spec.config);
  let vmlinux: string | undefined;
  let configFrom: GivenConfigSource = configPath ? '--config' : 'none';
  if (spec.buildDir) {
    const dir = resolve(spec.buildDir);
    const images = ['arch/x86/boot/bzImage', 'arch/x86_64/boot/bzImage'].map((p) => join(dir, p));
    const found: string[] = [];
    for (const p of images) if (await exists(p)) found.push(p);
    bzImagePath = found[0];
    if (!bzImagePath) throw badInput(`--build-dir ${dir} has no bzImage (looked for ${images.join(' and ')})`, { hint: 'build it first (make O=DIR bzImage), or give the image with --kernel' });
    if (!configPath) {
      configPath = join(dir, '.config');
      if (!(await exists(configPath))) throw badInput(`--build-dir ${dir} has no .config`, { hint: 'give the build directory of a configured tree (make O=DIR ...), or the config with --config' });
      configFrom = 'build-dir';
    }
    if (await exists(join(dir, 'vmlinux'))) vmlinux = join(dir, 'vmlinux');
  }
  if (!bzImagePath) throw badInput('no kernel given');
  const image = await readFile(bzImagePath).catch((err: NodeJS.ErrnoException) => {
    throw badInput(`--kernel ${bzImagePath}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  const release = bzImageRelease(image);
  if (!release) throw badInput(`${bzImagePath} is not an x86 bzImage (no "HdrS" setup header)`, { hint: 'give arch/x86/boot/bzImage of a kernel build' });
  const version = parseVersion(release);
  const era = eraFor(version);
  if (!era) throw badInput(`${bzImagePath} is Linux ${release}, older than any kernel ktrial knows how to boot`);
  let configText = configPath ? await readFile(configPath, 'utf8').catch(() => undefined) : undefined;
  if (configPath && configText === undefined) throw badInput(`--config ${configPath}: no such file`);
  if (configText === undefined) {
    configText = await extractIkconfig(image);
    if (configText !== undefined) configFrom = 'ikconfig';
  }
  await mkdir(outDir, { recursive: true });
  const bzImageSha256 = sha256(image);
  const configCopy = join(outDir, 'config');
  if (configText !== undefined) await writeFile(configCopy, configText);
  const manifest: KernelManifest = {
    ktrialBuildRecipe: 0,
    cacheKey: `given-${bzImageSha256.slice(0, 16)}`,
    trial: { name: '', file: '', sha256: '' },
    source: { id: `given:${bzImageSha256}`, version: versionString(version), era: era.name },
    patches: [],
    config: { base: configFrom, fragments: [], options: {}, finalSha256: configText === undefined ? '' : sha256(configText) },
    toolchain: { cc: '', ccVersion: 'unknown (built elsewhere)', gccMajor: 0, ldVersion: '', makeVersion: '' },
    make: { args: [], env: {} },
    kernelRelease: release,
    bzImageSha256,
    build: { seconds: 0, warnings: 0, objects: 0, ...(spec.buildDir ? { tree: resolve(spec.buildDir) } : {}) },
  };
  await writeFile(join(outDir, 'manifest.json'), `${JSON.stringify({ given: { ...spec, bzImage: bzImagePath, configFrom }, ...manifest }, null, 2)}\n`);
  return {
    dir: outDir,
    bzImage: bzImagePath,
    config: configCopy,
    ...(vmlinux ? { vmlinux } : {}),
    buildLog: '',
    manifest,
    options: KernelConfig.parse(configText ?? (await Promise.all(trialFragments.map((f) => readFile(f, 'utf8')))).join('\n'), configText === undefined ? 'the trial\'s fragments' : 'config'),
    cacheHit: false,
    configFrom,
    ...(configText === undefined ? { unjudged: 'the kernel was given without a config (--config), and carries none (CONFIG_IKCONFIG)' } : {}),
  };
}
