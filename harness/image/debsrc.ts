// Fetching Debian source packages without touching the host's apt state: apt runs with
// its own (empty) sources.list, a deb822 file of deb-src entries derived from the host's
// Debian sources, and private list and cache directories. Downloads are checked against
// the .dsc sha256 pinned in the recipe; dpkg-source checks every other file against the .dsc.
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostFailure } from '../common/errors.js';
import { runOk, run } from '../common/proc.js';
import { sha256File, hashValue, shortHash } from '../common/hash.js';
import { cached } from '../common/cache.js';
import type { StageContext } from '../common/context.js';
import type { Component, UserlandRecipe } from './recipe.js';

export interface AptSource {
  uris: string[];
  suites: string[];
  components: string[];
  signedBy?: string;
}

/** Parse deb822 .sources text into the entries that carry binary ("deb") packages. */
export function parseDeb822(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const stanza of text.split(/\n\s*\n/)) {
    const fields = new Map<string, string>();
    let last: string | undefined;
    for (const raw of stanza.split('\n')) {
      if (raw.startsWith('#')) continue;
      if (/^\s/.test(raw) && last) {
        fields.set(last, `${fields.get(last)} ${raw.trim()}`);
        continue;
      }
      const m = /^([A-Za-z0-9-]+):\s*(.*)$/.exec(raw);
      if (!m) continue;
      last = m[1]!.toLowerCase();
      fields.set(last, m[2]!.trim());
    }
    const words = (k: string) => (fields.get(k) ?? '').split(/\s+/).filter(Boolean);
    if (!words('types').includes('deb')) continue;
    if ((fields.get('enabled') ?? 'yes').toLowerCase() === 'no') continue;
    const signed = fields.get('signed-by');
    const src: AptSource = { uris: words('uris'), suites: words('suites'), components: words('components') };
    // An inline key block cannot be carried over by name; the recipe's keyring is used then.
    if (signed && !signed.includes('BEGIN PGP')) src.signedBy = signed;
    if (src.uris.length && src.suites.length) out.push(src);
  }
  return out;
}

/** Parse one-line sources.list text ("deb [opts] URI SUITE COMPONENTS..."). */
export function parseOneLine(text: string): AptSource[] {
  const out: AptSource[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*/, '').trim();
    const m = /^deb\s+(?:\[([^\]]*)\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
    if (!m) continue;
    const src: AptSource = { uris: [m[2]!], suites: [m[3]!], components: m[4]!.split(/\s+/).filter(Boolean) };
    const signed = /signed-by=(\S+)/.exec(m[1] ?? '');
    if (signed) src.signedBy = signed[1]!;
    out.push(src);
  }
  return out;
}

/** The deb-src file for our private apt: the host's Debian sources, or the recipe's fallback. */
export async function debSrcFile(recipe: UserlandRecipe, etc = '/etc/apt'): Promise<string> {
  let sources: AptSource[] = [];
  const partsDir = join(etc, 'sources.list.d');
  const names = await readdir(partsDir).catch(() => [] as string[]);
  for (const n of names.sort()) {
    const text = await readFile(join(partsDir, n), 'utf8').catch(() => '');
    if (n.endsWith('.sources')) sources.push(...parseDeb822(text));
    else if (n.endsWith('.list')) sources.push(...parseOneLine(text));
  }
  sources.push(...parseOneLine(await readFile(join(etc, 'sources.list'), 'utf8').catch(() => '')));
  // Keep Debian's own archives only (third-party repositories have no busybox source).
  sources = sources.filter((s) => s.uris.some((u) => /debian/.test(u)));
  if (sources.length === 0) {
    sources = [{ uris: [recipe.debian.fallback_mirror], suites: recipe.debian.fallback_suites, components: ['main'] }];
  }
  return sources
    .map((s) =>
      [
        'Types: deb-src',
        `URIs: ${s.uris.join(' ')}`,
        `Suites: ${s.suites.join(' ')}`,
        `Components: ${(s.components.length ? s.components : ['main']).join(' ')}`,
        `Signed-By: ${s.signedBy ?? recipe.debian.keyring}`,
      ].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

/** The file names a .dsc lists (its Checksums-Sha256 or Files field). */
export function dscFiles(dsc: string): string[] {
  const m = /^Checksums-Sha256:\s*\n((?:[ \t]+\S.*\n?)+)/m.exec(dsc) ?? /^Files:\s*\n((?:[ \t]+\S.*\n?)+)/m.exec(dsc);
  if (!m) return [];
  return m[1]!
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[2])
    .filter((x): x is string => !!x);
}

const dscName = (c: Component) => `${c.package}_${c.version.replace(/^\d+:/, '')}.dsc`;

export const sourceKey = (c: Component) => hashValue({ package: c.package, version: c.version, dsc: c.dsc_sha256 });

export interface FetchedSource {
  component: Component;
  /** The cache entry holding the .dsc and the files it lists. */
  dir: string;
  dsc: string;
}

/**
 * Make sure each component's source package is in the cache (kind "guest-sources"),
 * downloading what is missing with one private apt session.
 */
export async function fetchSources(recipe: UserlandRecipe, components: Component[], ctx: StageContext): Promise<FetchedSource[]> {
  let apt: { dir: string; opts: string[] } | undefined;
  const openApt = async () => {
    if (apt) return apt;
    const dir = await mkdtemp(join(tmpdir(), 'ktrial-apt-'));
    for (const d of ['etc/sources.list.d', 'lists/partial', 'cache/archives/partial']) await mkdir(join(dir, d), { recursive: true });
    await writeFile(join(dir, 'etc/sources.list'), '');
    await writeFile(join(dir, 'etc/sources.list.d/ktrial-src.sources'), await debSrcFile(recipe));
    const opts = [
      '-o', `Dir::Etc::SourceList=${join(dir, 'etc/sources.list')}`,
      '-o', `Dir::Etc::SourceParts=${join(dir, 'etc/sources.list.d')}`,
      '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
      '-o', `Dir::Cache=${join(dir, 'cache')}`,
      '-o', 'Acquire::Languages=none',
      ...(process.getuid?.() === 0 ? ['-o', 'APT::Sandbox::User=root'] : []),
    ];
    ctx.progress.info('guest userland: updating a private apt source index (the host apt state is not touched)');
    await runOk('apt-get', [...opts, '-q', 'update'], { signal: ctx.signal, cwd: dir }, 'apt-get update (private deb-src index)');
    apt = { dir, opts };
    return apt;
  };
  const out: FetchedSource[] = [];
  try {
    for (const c of components) {
      const entry = await cached(
        'guest-sources',
        `${c.package}-${shortHash(sourceKey(c))}`,
        async (tmp) => {
          const a = await openApt();
          ctx.progress.info(`guest userland: downloading the ${c.package} ${c.version} source package`);
          const r = await run('apt-get', [...a.opts, '-q', 'source', '--download-only', `${c.package}=${c.version}`], { signal: ctx.signal, cwd: tmp });
          if (r.exitCode !== 0) {
            throw hostFailure(`cannot download the Debian source package ${c.package}=${c.version}`, {
              excerpt: r.all.trim().split('\n').slice(-12).join('\n'),
              hint: `check that the host reaches its Debian mirror; if the mirror no longer carries this version, update version and dsc_sha256 in images/recipes/userland.yaml (snapshot.debian.org keeps every version)`,
            });
          }
          await verifyDsc(c, tmp);
        },
        { onWait: (pid) => ctx.progress.info(`guest userland: waiting for process ${pid}, which is downloading ${c.package}`) },
      );
      out.push({ component: c, dir: entry.dir, dsc: join(entry.dir, dscName(c)) });
    }
  } finally {
    if (apt) await rm(apt.dir, { recursive: true, force: true });
  }
  return out;
}

async function verifyDsc(c: Component, dir: string): Promise<void> {
  const dsc = join(dir, dscName(c));
  let got: string;
  try {
    got = await sha256File(dsc);
  } catch {
    throw hostFailure(`apt-get did not produce ${dscName(c)}`, { hint: 'the mirror may carry a different version; see images/recipes/userland.yaml' });
  }
  if (got !== c.dsc_sha256) {
    throw hostFailure(`${dscName(c)} has sha256 ${got}, but the recipe pins ${c.dsc_sha256}`, {
      hint: 'the download does not match the pinned source package; do not build from it. If Debian republished the package on purpose, update images/recipes/userland.yaml',
    });
  }
  const listed = dscFiles(await readFile(dsc, 'utf8'));
  if (listed.length === 0) throw hostFailure(`${dscName(c)} lists no files`);
  for (const f of listed) {
    await readFile(join(dir, f)).catch(() => {
      throw hostFailure(`${c.package}: ${f}, listed in the .dsc, was not downloaded`);
    });
  }
}

/** Unpack a fetched source into dest with dpkg-source, which checks the files against the .dsc. */
export async function unpackSource(src: FetchedSource, dest: string, ctx: StageContext, logFile?: string): Promise<void> {
  // dpkg-source wants the files beside the .dsc in a writable place it may also touch.
  const stage = `${dest}.dsc`;
  await mkdir(stage, { recursive: true });
  const listed = dscFiles(await readFile(src.dsc, 'utf8'));
  for (const f of [...listed, src.dsc.split('/').pop()!]) await copyFile(join(src.dir, f), join(stage, f));
  await runOk('dpkg-source', ['-x', join(stage, src.dsc.split('/').pop()!), dest], { signal: ctx.signal, cwd: stage, ...(logFile ? { logFile } : {}) }, `dpkg-source -x ${src.component.package}`);
  await rm(stage, { recursive: true, force: true });
}
