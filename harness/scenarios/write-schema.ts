// Writes configs/schema/scenario.schema.json from the scenario schema definition.
// Run after changing harness/scenarios/schema.ts: node dist/harness/scenarios/write-schema.js
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { scenarioJsonSchemaText } from './schema.js';

const out = fileURLToPath(new URL('../../../configs/schema/scenario.schema.json', import.meta.url));
await mkdir(fileURLToPath(new URL('../../../configs/schema/', import.meta.url)), { recursive: true });
await writeFile(out, scenarioJsonSchemaText());
process.stdout.write(`wrote ${out}\n`);
