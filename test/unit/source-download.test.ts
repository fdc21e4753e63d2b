// A trial's pinned tarball fetched over HTTP (from a server on loopback): a download that
// does not match its pin is not kept, so the next run downloads it again and succeeds.
import t from 'tap';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { createHash } from 'node:crypto';
import { KtrialError } from '../../harness/common/errors.js';
import { Progress } from '../../harness/common/progress.js';
import { resolveSource } from '../../harness/source/source.js';
import { useCache } from '../helpers/cache.js';

t.test('a downloaded tarball that fails its sha256 is not kept; the next run fetches it again', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-download-'));
  // A tiny tree that reads as a 2.6.20 kernel, tarred.
  const tree = join(root, 'linux-2.6.20');
  await mkdir(join(tree, 'kernel'), { recursive: true });
  await writeFile(join(tree, 'Makefile'), 'VERSION = 2\nPATCHLEVEL = 6\nSUBLEVEL = 20\nEXTRAVERSION =\n');
  await execa('tar', ['-czf', join(root, 'good.tar.gz'), '-C', root, 'linux-2.6.20']);
  const good = await readFile(join(root, 'good.tar.gz'));
  const pin = createHash('sha256').update(good).digest('hex');

  let body: Buffer = Buffer.from('not the tarball the trial pins');
  const server = createServer((_req, res) => res.end(body));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/linux-2.6.20.tar.gz`;

  useCache(t, join(root, 'cache'));
  const ctx = { progress: new Progress(() => {}), signal: new AbortController().signal };
  // A source name of its own: KTRIAL_SOURCE_<NAME> set for other tests must not stand in for it.
  const spec = { kind: 'tarball' as const, name: 'ktrial-download-test', tarball: url, sha256: pin };

  const err = await resolveSource(spec, undefined, ctx).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof KtrialError && err.cls === 'bad-input', 'a mismatch is bad input');
  t.match((err as Error).message, /checksum mismatch .* the trial pins/);
  t.same(await readdir(join(root, 'cache', 'downloads')), [], 'the mismatching download is not kept');

  body = good;
  const src = await resolveSource(spec, undefined, ctx);
  t.equal(src.id, `sha256:${pin}`, 'the next run downloads it again and uses it');
  t.equal(src.version.sub, 20);
});
