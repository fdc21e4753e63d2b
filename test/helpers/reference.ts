// One plain `ktrial run TRIAL` serves every test that needs a trial's verdicts as a
// reference (the subject, its shards, its --jobs run, its LAVA job, --kernel, --isolate).
// The run is kept under out/test/reference, keyed by the kernel's cache key and by ktrial's
// own files (compiled harness, guest image sources, configs, suites, patches), so each test
// still runs alone and any change to what decides the verdicts runs it again.
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { lock } from '../../harness/common/cache.js';
import { repoPath } from '../../harness/common/paths.js';
import type { KernelManifest } from '../../harness/kernel/pipeline.js';
import type { RunResults } from '../../harness/report/index.js';
import { ktrial, type CliResult } from './cli.js';

/** What decides a run's verdicts besides the kernel. */
const INPUTS = ['dist/harness', 'images', 'configs', 'test/scenarios', 'kernel-patches', 'bin', 'package-lock.json'];
/** Written last: a directory without it is a run that did not finish. */
const DONE = 'reference-run.json';

export interface ReferenceRun extends CliResult {
  out: string;
  results: RunResults;
}

async function inputsHash(): Promise<string> {
  const h = createHash('sha256');
  for (const top of INPUTS) {
    const path = repoPath(top);
    const names = top.includes('.') ? [''] : (await readdir(path, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath ?? e.path, e.name).slice(path.length + 1)).sort();
    for (const name of names) h.update(`${top}/${name}\0`).update(await readFile(join(path, name))).update('\0');
  }
  for (const [k, v] of Object.entries(process.env).filter(([k]) => k.startsWith('KTRIAL_')).sort()) h.update(`${k}=${v}\0`);
  return h.digest('hex');
}

/** The trial's kernel cache key, from a build (a cache hit when any earlier test built it). */
async function kernelKey(trialFile: string): Promise<string> {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-reference-build-'));
  try {
    const b = await ktrial(['build', trialFile, '--out', out, '-q']);
    if (b.code !== 0) throw new Error(`ktrial build ${trialFile} exited ${b.code}:\n${b.stderr.slice(-3000)}`);
    return (JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as KernelManifest).cacheKey;
  } finally {
    await rm(out, { recursive: true, force: true });
  }
}

/** `ktrial run configs/trials/NAME.yaml --out DIR`, run once for all the tests that read it. */
export async function referenceRun(trialName: string): Promise<ReferenceRun> {
  const trialFile = repoPath('configs', 'trials', `${trialName}.yaml`);
  const key = createHash('sha256').update(`${await kernelKey(trialFile)}\0${await inputsHash()}`).digest('hex').slice(0, 16);
  const out = repoPath('out', 'test', 'reference', `${trialName}-${key}`);
  await mkdir(dirname(out), { recursive: true });
  const release = await lock(`${out}.lock`);
  try {
    let done = await readFile(join(out, DONE), 'utf8').then((text) => JSON.parse(text) as CliResult, () => undefined);
    if (!done) {
      await rm(out, { recursive: true, force: true });
      done = await ktrial(['run', trialFile, '--out', out]);
      await writeFile(join(out, DONE), JSON.stringify(done));
    }
    const text = await readFile(join(out, 'results.json'), 'utf8').catch(() => undefined);
    if (!text) throw new Error(`ktrial run ${trialName} left no results.json (exit ${done.code}):\n${done.stderr.slice(-3000)}`);
    return { ...done, out, results: JSON.parse(text) as RunResults };
  } finally {
    await release();
  }
}
