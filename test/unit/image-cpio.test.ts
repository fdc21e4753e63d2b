import t from 'tap';
import { mkdtemp, readFile, readlink, rm, stat, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { buildCpio, type CpioEntry } from '../../harness/image/cpio.js';
import { KtrialError } from '../../harness/common/errors.js';

const entries: CpioEntry[] = [
  { type: 'file', path: '/bin/hello', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
  { type: 'symlink', path: 'bin/sh', target: 'busybox' },
  { type: 'dir', path: '/root/.ssh', mode: 0o700 },
  { type: 'file', path: 'root/.ssh/authorized_keys', mode: 0o600, data: 'ssh-ed25519 AAAA test\n' },
  { type: 'chardev', path: '/dev/console', mode: 0o600, major: 5, minor: 1 },
  { type: 'file', path: 'etc/odd-size', data: Buffer.alloc(5, 0x41) },
  { type: 'file', path: 'etc/empty', data: '' },
];

const haveCpio = (() => {
  try {
    execFileSync('cpio', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

t.test('identical inputs give identical bytes, whatever the input order', async (t) => {
  const a = buildCpio(entries);
  const b = buildCpio([...entries].reverse());
  t.ok(a.equals(b));
  t.equal(a.length % 512, 0, 'padded to 512 bytes');
  t.equal(a.subarray(0, 6).toString('ascii'), '070701');
});

t.test('header fields: owner 0:0, mtime 0, sequential inodes in sorted order', async (t) => {
  const buf = buildCpio(entries);
  const seen: { name: string; ino: number; uid: number; gid: number; mtime: number; mode: number }[] = [];
  let off = 0;
  for (;;) {
    const h = buf.subarray(off, off + 110).toString('ascii');
    t.equal(h.slice(0, 6), '070701');
    const f = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const nameSize = f(11);
    const fileSize = f(6);
    const name = buf.subarray(off + 110, off + 110 + nameSize - 1).toString('utf8');
    seen.push({ name, ino: f(0), mode: f(1), uid: f(2), gid: f(3), mtime: f(5) });
    off += 110 + nameSize;
    off += (4 - (off % 4)) % 4;
    off += fileSize;
    off += (4 - (off % 4)) % 4;
    if (name === 'TRAILER!!!') break;
  }
  const names = seen.map((s) => s.name);
  t.same(names, ['bin', 'bin/hello', 'bin/sh', 'dev', 'dev/console', 'etc', 'etc/empty', 'etc/odd-size', 'root', 'root/.ssh', 'root/.ssh/authorized_keys', 'TRAILER!!!']);
  for (const s of seen.slice(0, -1)) {
    t.equal(s.uid, 0);
    t.equal(s.gid, 0);
    t.equal(s.mtime, 0);
  }
  t.same(
    seen.map((s) => s.ino),
    [...names.slice(0, -1).map((_, i) => i + 1), 0],
  );
  t.equal(seen.find((s) => s.name === 'root/.ssh')!.mode, 0o040700);
  t.equal(seen.find((s) => s.name === 'dev/console')!.mode, 0o020600);
});

t.test('rejects duplicates, "..", and files used as directories', async (t) => {
  t.throws(() => buildCpio([{ type: 'dir', path: 'a' }, { type: 'dir', path: '/a/' }]), KtrialError);
  t.throws(() => buildCpio([{ type: 'file', path: 'a/../b', data: '' }]), KtrialError);
  t.throws(() => buildCpio([{ type: 'file', path: 'a', data: '' }, { type: 'file', path: 'a/b', data: '' }]), KtrialError);
});

t.test('GNU cpio lists and extracts what we wrote', { skip: haveCpio ? false : 'cpio is not installed' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-cpio-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Device nodes need root to extract; list them, extract the rest.
  const archive = join(dir, 'a.cpio');
  await writeFile(archive, buildCpio(entries));
  const listing = execFileSync('cpio', ['-it', '--quiet', '-F', archive], { encoding: 'utf8' });
  t.same(listing.trim().split('\n'), ['bin', 'bin/hello', 'bin/sh', 'dev', 'dev/console', 'etc', 'etc/empty', 'etc/odd-size', 'root', 'root/.ssh', 'root/.ssh/authorized_keys']);
  const verbose = execFileSync('cpio', ['-itv', '--quiet', '--numeric-uid-gid', '-F', archive], { encoding: 'utf8' });
  const console = verbose.split('\n').find((l) => l.endsWith('dev/console'))!;
  t.match(console, /^crw-------\s+1\s+0\s+0\s+5,\s+1 /);
  t.match(verbose, /-rwxr-xr-x\s+1\s+0\s+0\s+18 .* bin\/hello/);
  t.match(verbose, /lrwxrwxrwx\s+1\s+0\s+0\s+7 .* bin\/sh -> busybox/);

  const noDev = join(dir, 'nodev.cpio');
  await writeFile(noDev, buildCpio(entries.filter((e) => e.type !== 'chardev')));
  const out = join(dir, 'out');
  execFileSync('mkdir', [out]);
  execFileSync('cpio', ['-idm', '--quiet', '--no-preserve-owner', '-F', noDev], { cwd: out });
  t.equal(await readFile(join(out, 'bin/hello'), 'utf8'), '#!/bin/sh\necho hi\n');
  t.equal((await stat(join(out, 'bin/hello'))).mode & 0o777, 0o755);
  t.equal(await readlink(join(out, 'bin/sh')), 'busybox');
  t.equal((await stat(join(out, 'root/.ssh'))).mode & 0o777, 0o700);
  t.equal((await stat(join(out, 'root/.ssh/authorized_keys'))).mode & 0o777, 0o600);
  t.equal(await readFile(join(out, 'etc/odd-size'), 'utf8'), 'AAAAA');
  t.equal((await stat(join(out, 'etc/empty'))).size, 0);
  t.equal((await stat(join(out, 'etc/odd-size'))).mtimeMs, 0, 'mtime 0 preserved by -m');
  t.same((await readdir(out)).sort(), ['bin', 'etc', 'root']);
});

/**
 * Unpacks `stream` into `dir` as the kernel unpacks an initramfs, which is a sequence of NUL
 * bytes and cpio archives, each starting 4-aligned (the kernel's
 * Documentation/driver-api/early-userspace/buffer-format.rst): GNU cpio extracts the archive
 * at each offset and says how many 512-byte blocks it read, which is where the next one
 * starts when each archive is padded to 512 bytes, as buildCpio's are (the kernel itself
 * needs no more than the 4-alignment). Returns the archives' offsets.
 */
function unpackInitramfs(stream: Buffer, dir: string): number[] {
  const starts: number[] = [];
  let offset = 0;
  while (offset < stream.length) {
    if (stream[offset] === 0) {
      offset++;
      continue;
    }
    if (offset % 4 || stream.subarray(offset, offset + 6).toString('latin1') !== '070701') throw new Error(`no newc header at byte ${offset}`);
    const cpio = spawnSync('cpio', ['-idm', '--no-preserve-owner'], { cwd: dir, input: stream.subarray(offset), encoding: 'utf8' });
    const blocks = /^(\d+) blocks?$/m.exec(cpio.stderr);
    if (cpio.status !== 0 || !blocks || cpio.stderr.trim() !== blocks[0]) throw new Error(`cpio at byte ${offset}: ${cpio.stderr}`);
    starts.push(offset);
    offset += Number(blocks[1]) * 512;
  }
  return starts;
}

t.test('two archives concatenated are read as one stream, as the kernel reads an initramfs', { skip: haveCpio ? false : 'cpio is not installed' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-cpio-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // As writeRunOverlay does: a base image, then an archive adding a file in its directory.
  const base = buildCpio([
    { type: 'file', path: 'etc/base', data: 'one' },
    { type: 'dir', path: 'root', mode: 0o700 },
  ]);
  const overlay = buildCpio([{ type: 'file', path: 'root/.ssh/authorized_keys', mode: 0o600, data: 'two' }]);
  t.same(unpackInitramfs(Buffer.concat([base, overlay]), dir), [0, base.length], 'the second archive starts where cpio stopped reading the first');
  t.equal(await readFile(join(dir, 'etc/base'), 'utf8'), 'one', "the first archive's file");
  t.equal(await readFile(join(dir, 'root/.ssh/authorized_keys'), 'utf8'), 'two', "the second archive's file, in the first one's directory");
  t.equal((await stat(join(dir, 'root/.ssh/authorized_keys'))).mode & 0o777, 0o600);
  t.same((await readdir(dir)).sort(), ['etc', 'root']);
});
