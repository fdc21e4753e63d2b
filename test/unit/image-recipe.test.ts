import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { expand, loadImageRecipe, loadUserlandRecipe, setKconfig } from '../../harness/image/recipe.js';
import { debSrcFile, dscFiles, parseDeb822, parseOneLine } from '../../harness/image/debsrc.js';
import { buildCpio } from '../../harness/image/cpio.js';
import { layoutEntries, runOverlayEntries, writeRunOverlay } from '../../harness/image/image.js';
import { KtrialError } from '../../harness/common/errors.js';
import { which } from '../../harness/common/hosttools.js';
import { selftestPackageFor } from '../../harness/image/selftests.js';

t.test('the recipes in images/recipes load and pin what they build', async (t) => {
  const { recipe } = await loadUserlandRecipe();
  t.same(
    recipe.components.map((c) => c.name),
    ['busybox', 'dropbear'],
  );
  for (const c of recipe.components) {
    t.match(c.dsc_sha256, /^[0-9a-f]{64}$/);
    t.ok(c.version.length > 0);
  }
  const { recipe: layout } = await loadImageRecipe();
  t.equal(layout.init.path, '/init');
  t.equal(layout.directories?.['/root/.ssh'], 0o700);
  const entries = layoutEntries(layout);
  t.ok(entries.some((e) => e.path === '/dev/console' && e.type === 'chardev'));
});

t.test('a malformed recipe is reported with its place', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-recipe-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const f = join(dir, 'userland.yaml');
  await writeFile(f, 'debian: {fallback_mirror: ftp://x, fallback_suites: [a], keyring: k}\nuapi_headers: []\ncomponents:\n  - name: x\n    package: x\n    version: "1"\n    dsc_sha256: nothex\n    steps: [{run: [true]}]\n    outputs: {}\n');
  try {
    await loadUserlandRecipe(f);
    t.fail('expected an error');
  } catch (err) {
    t.ok(err instanceof KtrialError);
    t.equal((err as KtrialError).cls, 'bad-input');
    t.match((err as KtrialError).message, /userland\.yaml:1:\d+: "ftp:\/\/x" does not match/);
    t.match((err as KtrialError).message, /userland\.yaml:7:\d+: "nothex" does not match/);
  }
});

t.test('setKconfig replaces "is not set" lines instead of appending', async (t) => {
  const text = 'CONFIG_A=y\n# CONFIG_STATIC is not set\nCONFIG_EXTRA_CFLAGS=""\n';
  const out = setKconfig(text, { CONFIG_STATIC: 'y', CONFIG_EXTRA_CFLAGS: '"-idirafter /x"', CONFIG_NEW: 'y', CONFIG_A: 'n' });
  t.equal(out, '# CONFIG_A is not set\nCONFIG_STATIC=y\nCONFIG_EXTRA_CFLAGS="-idirafter /x"\nCONFIG_NEW=y\n');
});

t.test('expand substitutes known variables and refuses unknown ones', async (t) => {
  t.equal(expand('-j${jobs}', { jobs: '2' }, 'here'), '-j2');
  t.throws(() => expand('${nope}', { jobs: '2' }, 'here'), KtrialError);
});

t.test('deb-src entries derived from deb822 and one-line sources', async (t) => {
  const deb822 = `Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://example.org/other
Suites: x
Components: main

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Enabled: no
`;
  const s = parseDeb822(deb822);
  t.equal(s.length, 1);
  t.same(s[0], { uris: ['http://deb.debian.org/debian'], suites: ['bookworm', 'bookworm-updates'], components: ['main'], signedBy: '/usr/share/keyrings/debian-archive-keyring.gpg' });
  t.same(parseOneLine('deb [arch=amd64 signed-by=/k.gpg] http://deb.debian.org/debian bookworm main contrib # c\n# deb http://x y z\n'), [
    { uris: ['http://deb.debian.org/debian'], suites: ['bookworm'], components: ['main', 'contrib'], signedBy: '/k.gpg' },
  ]);

  const etc = await mkdtemp(join(tmpdir(), 'ktrial-etc-'));
  t.teardown(() => rm(etc, { recursive: true, force: true }));
  const { recipe } = await loadUserlandRecipe();
  // No sources at all: the recipe's fallback mirror.
  t.match(await debSrcFile(recipe, etc), /^Types: deb-src\nURIs: http:\/\/deb\.debian\.org\/debian\nSuites: bookworm\n/);
  await writeFile(join(etc, 'sources.list'), 'deb http://deb.debian.org/debian bookworm main\n');
  const file = await debSrcFile(recipe, etc);
  t.match(file, /Types: deb-src/);
  t.match(file, /Signed-By: \/usr\/share\/keyrings\/debian-archive-keyring\.gpg/);
  t.notMatch(file, /^Types: deb$/m);
});

t.test('dscFiles lists the files a .dsc names', async (t) => {
  const dsc = `Format: 3.0 (quilt)
Source: dropbear
Checksums-Sha1:
 aaaa 1 dropbear_2022.83.orig.tar.bz2
Checksums-Sha256:
 0123 2322904 dropbear_2022.83.orig.tar.bz2
 4567 833 dropbear_2022.83.orig.tar.bz2.asc
 89ab 40864 dropbear_2022.83-1+deb12u3.debian.tar.xz
Files:
 cdef 1 dropbear_2022.83.orig.tar.bz2
`;
  t.same(dscFiles(dsc), ['dropbear_2022.83.orig.tar.bz2', 'dropbear_2022.83.orig.tar.bz2.asc', 'dropbear_2022.83-1+deb12u3.debian.tar.xz']);
});

const cpioMissing = (await which('cpio')) ? false : 'cpio is not installed (apt-get install cpio, or npm run setup): it reads the overlay back';
t.test('the run overlay: authorized_keys 0600 in a 0700 .ssh, appended after the base image', { skip: cpioMissing }, async (t) => {
  t.throws(() => runOverlayEntries('not a key'), KtrialError);
  t.throws(() => runOverlayEntries('ssh-ed25519 AAAA\nssh-ed25519 BBBB'), KtrialError);
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-overlay-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const base = buildCpio([{ type: 'file', path: '/init', mode: 0o755, data: 'x' }, { type: 'dir', path: '/root/.ssh', mode: 0o700 }]);
  await writeFile(join(dir, 'base.cpio'), base);
  const out = await writeRunOverlay({ initramfs: join(dir, 'base.cpio') }, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx run', join(dir, 'run'));
  const all = await readFile(out);
  t.ok(all.subarray(0, base.length).equals(base), 'the base image is unchanged at the front');
  t.equal(base.length % 512, 0);
  const overlay = all.subarray(base.length);
  await writeFile(join(dir, 'overlay.cpio'), overlay);
  const listing = execFileSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid', '-F', join(dir, 'overlay.cpio')], { encoding: 'utf8' });
  t.match(listing, /drwx------\s+2\s+0\s+0\s+0 .* root\/\.ssh\n/);
  t.match(listing, /-rw-------\s+1\s+0\s+0\s+\d+ .* root\/\.ssh\/authorized_keys/);
  // The base image stays free of client keys: the cached file is never written to.
  t.equal((await readFile(join(dir, 'base.cpio'))).length, base.length);
});

t.test("a kernel's selftests come from the newest package of a series it has reached, else the oldest", async (t) => {
  const packages = ['linux-source-6.12', 'linux-source-6.1'];
  t.equal(selftestPackageFor(packages, '6.12.118'), 'linux-source-6.12');
  t.equal(selftestPackageFor(packages, '6.13.0-rc1'), 'linux-source-6.12');
  t.equal(selftestPackageFor(packages, '6.6.30'), 'linux-source-6.1', '6.6 lies between the two: 6.1');
  t.equal(selftestPackageFor(packages, '6.1.192'), 'linux-source-6.1');
  t.equal(selftestPackageFor(packages, '5.10.0'), 'linux-source-6.1', 'older than every package: the oldest');
  t.equal(selftestPackageFor(packages, '6.2.0'), 'linux-source-6.1', 'series compare as numbers: 6.2 is before 6.12');
});
