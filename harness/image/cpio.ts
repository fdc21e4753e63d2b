// A deterministic writer for the "newc" cpio format the kernel unpacks as an initramfs.
// Identical inputs give byte-identical archives: every entry is owned by 0:0 with mtime 0,
// entries are sorted by path (a parent always sorts before its children), missing parent
// directories are added, and inode numbers are assigned in that order.
import { badInput } from '../common/errors.js';

export type CpioEntry =
  | { type: 'dir'; path: string; mode?: number }
  | { type: 'file'; path: string; mode?: number; data: Buffer | string }
  | { type: 'symlink'; path: string; target: string }
  | { type: 'chardev' | 'blockdev'; path: string; mode?: number; major: number; minor: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;

/** Archive-relative form of a path: no leading "/" or "./", no empty or dot components. */
export function normalizeCpioPath(p: string): string {
  const parts = p.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.length === 0) throw badInput(`cpio: empty path "${p}"`);
  if (parts.includes('..')) throw badInput(`cpio: path "${p}" contains ".."`);
  return parts.join('/');
}

interface Row {
  path: string;
  mode: number;
  nlink: number;
  data: Buffer;
  rdevMajor: number;
  rdevMinor: number;
}

function toRow(e: CpioEntry): Row {
  const path = normalizeCpioPath(e.path);
  const perm = (m: number | undefined, dflt: number) => {
    const v = m ?? dflt;
    if (!Number.isInteger(v) || v < 0 || v > 0o7777) throw badInput(`cpio: bad mode ${v} for ${path}`);
    return v;
  };
  switch (e.type) {
    case 'dir':
      return { path, mode: S_IFDIR | perm(e.mode, 0o755), nlink: 2, data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0 };
    case 'file':
      return { path, mode: S_IFREG | perm(e.mode, 0o644), nlink: 1, data: Buffer.isBuffer(e.data) ? e.data : Buffer.from(e.data, 'utf8'), rdevMajor: 0, rdevMinor: 0 };
    case 'symlink':
      return { path, mode: S_IFLNK | 0o777, nlink: 1, data: Buffer.from(e.target, 'utf8'), rdevMajor: 0, rdevMinor: 0 };
    case 'chardev':
    case 'blockdev':
      return { path, mode: (e.type === 'chardev' ? S_IFCHR : S_IFBLK) | perm(e.mode, 0o600), nlink: 1, data: Buffer.alloc(0), rdevMajor: e.major, rdevMinor: e.minor };
  }
}

const hex8 = (n: number) => {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw badInput(`cpio: field value ${n} out of range`);
  return n.toString(16).padStart(8, '0');
};

const pad4 = (n: number) => (4 - (n % 4)) % 4;

function header(ino: number, r: Row, nameSize: number): string {
  return (
    '070701' +
    hex8(ino) +
    hex8(r.mode) +
    hex8(0) + // uid
    hex8(0) + // gid
    hex8(r.nlink) +
    hex8(0) + // mtime
    hex8(r.data.length) +
    hex8(0) + // devmajor
    hex8(0) + // devminor
    hex8(r.rdevMajor) +
    hex8(r.rdevMinor) +
    hex8(nameSize) +
    hex8(0) // check
  );
}

/** Byte-wise comparison, so the order never depends on the locale. */
const byBytes = (a: string, b: string) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));

/**
 * Build a newc archive. The result is padded to a multiple of 512 bytes, so archives can be
 * concatenated (the kernel unpacks them one after another).
 */
export function buildCpio(entries: readonly CpioEntry[]): Buffer {
  const rows = new Map<string, Row>();
  for (const e of entries) {
    const r = toRow(e);
    if (rows.has(r.path)) throw badInput(`cpio: duplicate entry ${r.path}`);
    rows.set(r.path, r);
  }
  // Add parent directories nobody listed; a listed parent must be a directory.
  for (const path of [...rows.keys()]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const existing = rows.get(parent);
      if (!existing) rows.set(parent, toRow({ type: 'dir', path: parent }));
      else if ((existing.mode & 0o170000) !== S_IFDIR) throw badInput(`cpio: ${parent} is not a directory but ${path} is inside it`);
    }
  }
  const sorted = [...rows.values()].sort((a, b) => byBytes(a.path, b.path));
  const chunks: Buffer[] = [];
  let size = 0;
  const push = (b: Buffer) => {
    chunks.push(b);
    size += b.length;
  };
  const emit = (ino: number, r: Row) => {
    const name = Buffer.from(`${r.path}\0`, 'utf8');
    push(Buffer.from(header(ino, r, name.length), 'ascii'));
    push(name);
    push(Buffer.alloc(pad4(110 + name.length)));
    if (r.data.length) {
      push(r.data);
      push(Buffer.alloc(pad4(r.data.length)));
    }
  };
  sorted.forEach((r, i) => emit(i + 1, r));
  emit(0, { path: 'TRAILER!!!', mode: 0, nlink: 1, data: Buffer.alloc(0), rdevMajor: 0, rdevMinor: 0 });
  const tailPad = (512 - (size % 512)) % 512;
  if (tailPad) push(Buffer.alloc(tailPad));
  return Buffer.concat(chunks, size);
}
