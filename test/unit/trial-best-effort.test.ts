import t from 'tap';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTrial } from '../../harness/trial/trial.js';
import { KtrialError } from '../../harness/common/errors.js';
import { repoPath } from '../../harness/common/paths.js';

t.test('a fragment entry may be marked best-effort; plain entries are not', async (t) => {
  const trial = await loadTrial(repoPath('test', 'fixtures', 'trials', 'best-effort.yaml'));
  t.same(trial.config.fragments, [repoPath('configs', 'fragments', 'guest-modern.config'), repoPath('configs', 'fragments', 'namespaces-modern.config')]);
  t.same(trial.config.bestEffort, [repoPath('configs', 'fragments', 'namespaces-modern.config')]);
});

t.test('a best-effort entry needs its file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-trial-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 't.yaml');
  await writeFile(file, 'name: x\nsource: {debian: linux-source-6.1}\nconfig:\n  base: tinyconfig\n  fragments:\n    - best-effort: true\n');
  const err = (await loadTrial(file).catch((e) => e)) as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /t\.yaml:6/);
});
