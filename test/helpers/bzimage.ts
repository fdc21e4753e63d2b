// Reads what a build left in a gzip-compressed bzImage (the 2.6-era default) that could tie
// it to a time, a user or a host: the gzip header of the compressed kernel, the "Linux
// version" banner and the mtimes of the built-in initramfs. Used to check that a build
// carries only the pinned identity, so that two builds are byte-for-byte equal.
import { readFile } from 'node:fs/promises';
import { inflateRawSync } from 'node:zlib';
import type { Test } from 'tap';

export interface BuildTraces {
  /** mtime field of the compressed kernel's gzip header. */
  payloadGzipMtime: number;
  /** The kernel's version banner, as /proc/version shows it. */
  banner: string;
  /** mtimes of the entries of the initramfs linked into the kernel. */
  initramfsMtimes: number[];
}

const GZIP_MAGIC = Buffer.from([0x1f, 0x8b, 0x08]);
const GZIP_FNAME = 0x08;

/**
 * The first gzip member at or after `from` that inflates to at least `minSize` bytes. The
 * deflate data is inflated raw, past the header, because what follows a member in a kernel
 * image is not gzip and zlib's gunzip would try to read it as a next member.
 */
function findGzip(buf: Buffer, from: number, minSize: number): { at: number; data: Buffer } | undefined {
  for (let at = buf.indexOf(GZIP_MAGIC, from); at >= 0; at = buf.indexOf(GZIP_MAGIC, at + 1)) {
    const flags = buf[at + 3]!;
    if (flags & ~GZIP_FNAME) continue;
    const body = flags & GZIP_FNAME ? buf.indexOf(0, at + 10) + 1 : at + 10;
    try {
      const data = inflateRawSync(buf.subarray(body));
      if (data.length >= minSize) return { at, data };
    } catch {
      // Not a gzip member: three bytes of code or data that look like one.
    }
  }
  return undefined;
}

/** mtimes of a newc cpio archive's entries. */
function cpioMtimes(cpio: Buffer): number[] {
  const out: number[] = [];
  let at = 0;
  while (at + 110 <= cpio.length && cpio.toString('latin1', at, at + 6) === '070701') {
    const field = (i: number) => parseInt(cpio.toString('latin1', at + 6 + i * 8, at + 14 + i * 8), 16);
    const fileSize = field(6);
    const nameSize = field(11);
    const name = cpio.toString('latin1', at + 110, at + 110 + nameSize - 1);
    if (name === 'TRAILER!!!') break;
    out.push(field(5));
    const pad4 = (n: number) => (n + 3) & ~3;
    at = pad4(pad4(at + 110 + nameSize) + fileSize);
  }
  return out;
}

export function buildTraces(bzImage: Buffer): BuildTraces {
  const payload = findGzip(bzImage, 0, 1 << 20);
  if (!payload) throw new Error('no gzip-compressed kernel found in the bzImage');
  const vmlinux = payload.data;
  const bannerAt = vmlinux.indexOf('Linux version ');
  if (bannerAt < 0) throw new Error('no "Linux version" banner in the kernel');
  const banner = vmlinux.toString('latin1', bannerAt, vmlinux.indexOf(0x0a, bannerAt));
  const initramfs = findGzip(vmlinux, 0, 1);
  const cpio = initramfs?.data.toString('latin1', 0, 6) === '070701' ? initramfs.data : undefined;
  if (!cpio) throw new Error('no built-in initramfs found in the kernel');
  return { payloadGzipMtime: bzImage.readUInt32LE(payload.at + 4), banner, initramfsMtimes: cpioMtimes(cpio) };
}

/** Asserts that a 2.6-era bzImage holds the pinned build identity and no build-time value. */
export async function expectPinnedIdentity(t: Test, bzImage: string, release: string, label: string): Promise<void> {
  const traces = buildTraces(await readFile(bzImage));
  const version = new RegExp(`^Linux version ${release.replace(/\./g, '\\.')} \\(ktrial@ktrial\\) .* #1 SMP Thu Jan {1,2}1 00:00:00 UTC 1970$`);
  t.match(traces.banner, version, `${label}: the version string holds the pinned user, host, build number and date`);
  t.equal(traces.payloadGzipMtime, 0, `${label}: the compressed kernel's gzip header holds no time`);
  t.ok(traces.initramfsMtimes.length > 0 && traces.initramfsMtimes.every((m) => m === 0), `${label}: the built-in initramfs entries carry the pinned time (${traces.initramfsMtimes.join(', ')})`);
}
