// Writes the JSON Schemas editors use for trial and scenario files, and the one of
// `ktrial compare --json` (configs/schema/), from the schema definitions behind them. Run
// after changing any of them:
//   npx tsc -p . && node dist/harness/write-schemas.js
import { mkdir, writeFile } from 'node:fs/promises';
import { repoPath } from './common/paths.js';
import { compareJsonSchemaText } from './compare/index.js';
import { scenarioJsonSchemaText } from './scenarios/schema.js';
import { trialJsonSchemaText } from './trial/schema.js';

await mkdir(repoPath('configs', 'schema'), { recursive: true });
for (const [name, text] of [
  ['trial.schema.json', trialJsonSchemaText()],
  ['scenario.schema.json', scenarioJsonSchemaText()],
  ['compare.schema.json', compareJsonSchemaText()],
] as const) {
  await writeFile(repoPath('configs', 'schema', name), text);
  process.stdout.write(`wrote configs/schema/${name}\n`);
}
