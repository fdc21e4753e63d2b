import t from 'tap';
import { join } from 'node:path';
import { loadTrial } from '../../harness/trial/trial.js';
import { KtrialError } from '../../harness/common/errors.js';
import { repoPath } from '../../harness/common/paths.js';

const fixture = (n: string) => repoPath('test', 'fixtures', 'trials', n);

t.test('every shipped trial loads', async (t) => {
  for (const n of ['smoke-2.6.20.yaml', 'smoke-debian-6.1.yaml']) {
    const trial = await loadTrial(repoPath('configs', 'trials', n));
    t.ok(trial.config.require.length > 0, `${n} requires options`);
    t.ok(trial.config.fragments.every((f) => f.startsWith('/')), `${n} fragments are absolute`);
  }
});

t.test('unknown keys and wrong types are all reported with line and column', async (t) => {
  const err = (await loadTrial(fixture('bad-keys.yaml')).catch((e) => e)) as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /3 problems/);
  t.match(err.message, /bad-keys\.yaml:7:3: unknown key "fragmens"/);
  t.match(err.message, /bad-keys\.yaml:11:5: key "NOT_A_SYMBOL" does not match/);
  t.match(err.message, /bad-keys\.yaml:13:9: expected a whole number, got string "fast"/);
  t.equal(err.where?.line, 7);
});

t.test('malformed YAML names the file and line', async (t) => {
  const err = (await loadTrial(fixture('malformed.yaml')).catch((e) => e)) as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /malformed YAML/);
  t.equal(err.where?.file, fixture('malformed.yaml'));
  t.equal(err.where?.line, 4);
});

t.test('a fragment that does not exist is named with its place in the trial', async (t) => {
  const err = (await loadTrial(fixture('missing-file.yaml')).catch((e) => e)) as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /config fragment .*does-not-exist\.config does not exist/);
  t.equal(err.where?.line, 8);
  t.equal(err.where?.column, 7);
});

t.test('a missing trial file is bad input', async (t) => {
  const err = (await loadTrial(join('/nonexistent', 'x.yaml')).catch((e) => e)) as KtrialError;
  t.equal(err.cls, 'bad-input');
  t.match(err.message, /cannot read/);
});

t.test('configs/schema/trial.schema.json is the generated schema', async (t) => {
  const { readFile } = await import('node:fs/promises');
  const { trialJsonSchemaText } = await import('../../harness/trial/schema.js');
  t.equal(await readFile(repoPath('configs', 'schema', 'trial.schema.json'), 'utf8'), trialJsonSchemaText(), 'regenerate with: node dist/harness/write-schemas.js');
});
