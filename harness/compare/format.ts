// The comparison as data: the 'ktrial-compare/1' document `ktrial compare --json` writes.
// One schema definition gives its type and the JSON Schema shipped in
// configs/schema/compare.schema.json, so the two never drift.
import { int, list, obj, str, type Infer, type Schema } from '../common/schema.js';
import type { Verdict } from '../scenarios/index.js';

export const COMPARE_FORMAT = 'ktrial-compare/1';

/** How a case in a later run stands against the baseline, most telling first. */
export const COMPARE_CLASSES = ['regression', 'fix', 'changed-actual', 'flaky', 'not-run', 'new', 'gone', 'unchanged'] as const;
export type CompareClass = (typeof COMPARE_CLASSES)[number];

/** A case in neither run of a pair (only a third run has it): in no class of that pair, so in none of its counts. */
export const ABSENT = 'absent';
const PAIR_STANDINGS = [...COMPARE_CLASSES, ABSENT] as const;
export type PairStanding = (typeof PAIR_STANDINGS)[number];

/** Whether the summary lists the case and the page marks it: a class other than unchanged. */
export const isChange = (s: PairStanding | undefined): s is Exclude<CompareClass, 'unchanged'> => s !== undefined && s !== 'unchanged' && s !== ABSENT;

export const CLASS_MEANINGS: Record<CompareClass, string> = {
  regression: 'as expected in the baseline, not as expected in this run',
  fix: 'not as expected in the baseline, as expected in this run',
  'changed-actual': 'the same standing in both (as expected in both or in neither), but a different verdict or actual value',
  flaky: 'flaky in the baseline or in this run',
  'not-run': 'not run in exactly one of the two, so not compared (never a regression)',
  new: 'only in this run',
  gone: 'only in the baseline',
  unchanged: 'the same verdict and actual value (or not run in both)',
};

export const VERDICTS = ['passed', 'failed', 'not-run', 'expected-failure', 'unexpectedly-passed', 'flaky'] as const satisfies readonly Verdict[];
const CELL_VERDICTS = [...VERDICTS, 'missing'] as const;

const cellSchema = obj(
  {
    verdict: { schema: str({ enum: CELL_VERDICTS }), required: true, description: "the case's verdict in this run; missing: the run has no such case" },
    reason: str({ description: 'why it failed, why it did not run, or the known issue' }),
    step: str({ description: 'the first step that did not go as expected' }),
    expected: str({ description: "that step's expectation, or every step's (one line each) when none failed" }),
    actual: str({ description: "that step's actual outcome, or every step's (one line each) when none failed" }),
    excerpt: str({ description: "the console excerpt of the crash or of the first kernel warning not known, or the failed step's output" }),
  },
  { description: 'one case in one run' },
);

const runSchema = obj(
  {
    label: { schema: str(), required: true, description: 'the run as given on the command line' },
    path: { schema: str(), required: true, description: 'the results.json read' },
    trial: { schema: str(), required: true },
    status: { schema: str(), required: true, description: "the run's own status (ok, unexpected, bad-input, kernel, host, interrupted)" },
    exitCode: int({ description: "the run's own exit code" }),
    startedAt: str(),
    kernel: str({ description: 'the kernel release' }),
    error: str({ description: 'why the run stopped short' }),
    cases: { schema: int({ min: 0 }), required: true, description: 'how many cases it has' },
  },
  { description: 'one compared run' },
);

const countsSchema = obj(
  Object.fromEntries(COMPARE_CLASSES.map((c) => [c, { schema: int({ min: 0 }), required: true, description: CLASS_MEANINGS[c] }])) as Record<CompareClass, { schema: Schema<number>; required: true; description: string }>,
  { description: 'how many cases fall in each class' },
);

export const compareSchema = obj({
  format: { schema: str({ enum: [COMPARE_FORMAT] }), required: true },
  runs: { schema: list(runSchema, { minItems: 2 }), required: true, description: 'the runs compared; the first is the baseline' },
  comparisons: {
    schema: list(obj({ run: { schema: int({ min: 1 }), required: true, description: 'index in runs' }, counts: { schema: countsSchema, required: true } })),
    required: true,
    description: 'one per later run, against the baseline',
  },
  cases: {
    schema: list(
      obj({
        suite: { schema: str(), required: true },
        name: { schema: str(), required: true },
        cells: { schema: list(cellSchema), required: true, description: 'one per run, in the order of runs' },
        classes: {
          schema: list(str({ enum: PAIR_STANDINGS })),
          required: true,
          description: `one per later run (runs[1], runs[2], ...), against the baseline; ${ABSENT}: in neither of the two, so in no class and in none of the counts`,
        },
      }),
    ),
    required: true,
    description: 'every case of any run, keyed by suite and name: the baseline order first, then cases new in later runs',
  },
  regressions: { schema: int({ min: 0 }), required: true, description: 'regressions over all later runs' },
  exitCode: { schema: int({ min: 0, max: 1 }), required: true, description: '1 when some later run has a regression, else 0' },
});

export type CompareDoc = Infer<typeof compareSchema>;
export type CompareCell = CompareDoc['cases'][number]['cells'][number];
export type CompareRun = CompareDoc['runs'][number];

export const toCompareJson = (doc: CompareDoc) => `${JSON.stringify(doc, null, 2)}\n`;

export function compareJsonSchemaText(): string {
  const schema = { $schema: 'https://json-schema.org/draft/2020-12/schema', $id: 'https://ktrial.invalid/schema/compare.schema.json', title: `ktrial compare --json (${COMPARE_FORMAT})`, ...compareSchema.json() };
  return `${JSON.stringify(schema, null, 2)}\n`;
}
