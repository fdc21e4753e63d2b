// The scenario API: load a suite, expand it to cases, run them in a guest, and judge.
export { loadSuite, parseSuite, suiteSelftests, withTrialVars, loadSuitesWithVars, ROOT, NOBODY } from './load.js';
export { expandSuite, stepLabel } from './expand.js';
export { describeAction } from './actions.js';
export { runProgram, runSuite, runSuiteRepeated, type ExecOptions, type RunOptions } from './run.js';
export { compile, selectByOnly, type CaseProgram, type CaseSelection, type CompileOptions, type GuestOp, type Program, type StepOp } from './program.js';
export { inShard, parseShard, shardOf, shardKey, SHARD_RULE, type Shard, type ShardRecord } from './shard.js';
export { applyKnownIssues, mergeRepeats, casesNotRun, isAsExpected, countVerdicts, missingRequirements, findKnownIssue, findKnownWarning, withWarnings, unmatchedIssueNotes } from './verdicts.js';
export { judge, describeExpectation, captureValues, type Judgement } from './expect.js';
export { commandLine, interpret, readingOf, stepCommand, type AgentLine, type GuestCommand, type Observation, type ExecResult, type Reading } from './agent.js';
export { scenarioJsonSchema, scenarioJsonSchemaText } from './schema.js';
export { AGENT_PATH } from './names.js';
export type * from './types.js';
