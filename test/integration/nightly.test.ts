// The nightly recipes in examples/ci/ run here as the CI engine would run them, so they
// cannot rot: every `run:` (GitHub Actions) or `script:` (GitLab CI) of the workflow, in job
// order, once per matrix or parallel job, with the workflow's variables, on this machine's
// real cached kernels. Two nights: the first has no baseline; the second compares with the
// first and must find no regression. What the engine itself provides is played by this
// test: actions (`uses:`) and installs (`npm ...`, done for this checkout already) are not
// run, the engine's caches are this machine's ktrial cache and one output directory that
// lasts from night to night, and artifacts stay where the jobs wrote them.
import t, { type Test } from 'tap';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { execa } from 'execa';
import { load } from 'js-yaml';
import { cacheRoot } from '../../harness/common/cache.js';
import { repoPath } from '../../harness/common/paths.js';
import { sourceSkip } from '../helpers/trees.js';
import type { RunResults } from '../../harness/report/index.js';

interface Command {
  /** Where it comes from, e.g. "shard (shard 2) step 4". */
  where: string;
  script: string;
  env: Record<string, string>;
}

type Doc = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const isInstall = (script: string) => /^npm\s/.test(script.trim());

/** ${{ matrix.X }}, ${{ strategy.job-total }} and ${{ env.X }}; anything else is an error, so a new expression cannot pass unseen. */
function expand(text: string, values: Record<string, string>): string {
  return text.replace(/\$\{\{\s*([^}]+?)\s*\}\}/g, (_, expr: string) => {
    if (!(expr in values)) throw new Error(`the workflow uses \${{ ${expr} }}, which this test does not provide`);
    return values[expr]!;
  });
}

/** GitHub Actions: each job in order, each matrix combination of one matrix key, each `run:` step. */
function githubCommands(doc: Doc, overrides: Record<string, string>): Command[] {
  const env = { ...doc.env, ...overrides } as Record<string, string>;
  const out: Command[] = [];
  for (const [jobName, job] of Object.entries<Doc>(doc.jobs)) {
    const matrix = (job.strategy?.matrix ?? {}) as Record<string, unknown[]>;
    const keys = Object.keys(matrix);
    if (keys.length > 1) throw new Error(`job ${jobName}: this test expands one matrix key, the workflow has ${keys.join(', ')}`);
    const combos = keys.length ? matrix[keys[0]!]!.map((v) => ({ [`matrix.${keys[0]}`]: String(v), 'strategy.job-total': String(matrix[keys[0]!]!.length) })) : [{}];
    for (const combo of combos) {
      const values: Record<string, string> = { ...combo, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [`env.${k}`, String(v)])) };
      (job.steps as Doc[]).forEach((step, i) => {
        if (typeof step.run !== 'string' || isInstall(step.run)) return;
        out.push({ where: `${jobName}${keys.length ? ` (${Object.values(combo)[0]})` : ''} step ${i + 1}`, script: expand(step.run, values), env: { ...env, ...(step.env ?? {}) } });
      });
    }
  }
  return out;
}

/** GitLab CI: each job in stage order, each of its `parallel:` copies, its `script:` lines in one shell. */
function gitlabCommands(doc: Doc, overrides: Record<string, string>): Command[] {
  const out: Command[] = [];
  const jobs = Object.entries<Doc>(doc).filter(([name, job]) => !name.startsWith('.') && job && typeof job === 'object' && 'script' in job);
  for (const stage of doc.stages as string[]) {
    for (const [jobName, job] of jobs.filter(([, j]) => j.stage === stage)) {
      const copies = typeof job.parallel === 'number' ? job.parallel : 1;
      for (let n = 1; n <= copies; n++) {
        const env: Record<string, string> = { ...doc.variables, ...job.variables, ...(copies > 1 ? { CI_NODE_INDEX: String(n), CI_NODE_TOTAL: String(copies) } : {}), ...overrides };
        const lines = (job.script as string[]).filter((l) => !isInstall(l));
        out.push({ where: `${jobName}${copies > 1 ? ` ${n}/${copies}` : ''}`, script: lines.join('\n'), env });
      }
    }
  }
  return out;
}

async function night(t: Test, commands: Command[]): Promise<boolean> {
  for (const c of commands) {
    const r = await execa('sh', ['-e', '-c', c.script], { cwd: repoPath(), env: c.env, reject: false, all: true, timeout: 1_800_000 });
    t.equal(r.exitCode, 0, `${c.where} succeeds${r.exitCode ? `:\n${String(r.all).slice(-3000)}` : ''}`);
    // The engine stops the night here too: the later jobs and steps need this one's outputs.
    if (r.exitCode !== 0) return false;
  }
  return true;
}

const exists = (p: string) => stat(p).then(() => true, () => false);

async function twoNights(t: Test, file: string, commandsOf: (doc: Doc, overrides: Record<string, string>) => Command[]): Promise<void> {
  const doc = load(await readFile(repoPath('examples', 'ci', file), 'utf8')) as Doc;
  const out = await mkdtemp(join(tmpdir(), 'ktrial-nightly-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  // The workflow's OUT is the engine's lasting directory; KTRIAL_CACHE the engine's cache.
  const commands = commandsOf(doc, { OUT: out, KTRIAL_CACHE: cacheRoot() });
  const ktrialLines = commands.flatMap((c) => c.script.split('\n')).filter((l) => l.includes('bin/ktrial.js')).map((l) => /bin\/ktrial\.js (\w+)/.exec(l)![1]);
  t.same([...new Set(ktrialLines)], ['run', 'merge', 'compare'], 'the workflow runs shards, merges them and compares');
  t.ok(commands.filter((c) => c.script.includes('--shard')).length > 1, 'in more than one shard');

  if (!(await night(t, commands))) return;
  const first = JSON.parse(await readFile(join(out, 'tonight', 'results.json'), 'utf8')) as RunResults;
  t.equal(first.mergedFrom?.length, commands.filter((c) => c.script.includes('--shard')).length, 'night 1: every shard merged');
  t.notOk(await exists(join(out, 'compare.html')), 'night 1: no baseline, so no comparison');
  t.same(JSON.parse(await readFile(join(out, 'baseline', 'results.json'), 'utf8')).mergedFrom, first.mergedFrom, "night 1's run is kept as the baseline");

  if (!(await night(t, commands))) return;
  t.ok(await exists(join(out, 'compare.html')), 'night 2: compared with night 1');
  const last = JSON.parse(await readFile(join(out, 'last-night', 'results.json'), 'utf8')) as RunResults;
  t.equal(last.startedAt, first.startedAt, "night 2's baseline is night 1's run");
  const second = JSON.parse(await readFile(join(out, 'tonight', 'results.json'), 'utf8')) as RunResults;
  t.same(second.cases.map((c) => `${c.suite}/${c.name}: ${c.verdict}`), first.cases.map((c) => `${c.suite}/${c.name}: ${c.verdict}`), 'the same verdicts on both nights (so compare rightly found no regression)');
}

/** Skipped, with the reason, when the workflow's trial has no kernel source here. */
async function trialSkip(file: string, variables: (doc: Doc) => Record<string, string>) {
  const doc = load(await readFile(repoPath('examples', 'ci', file), 'utf8')) as Doc;
  return sourceSkip(basename(variables(doc).TRIAL!, '.yaml'));
}

t.test('the GitHub Actions nightly workflow, two nights', { skip: await trialSkip('github-actions-nightly.yml', (d) => d.env) }, (t) => twoNights(t, 'github-actions-nightly.yml', githubCommands));
t.test('the GitLab CI nightly pipeline, two nights', { skip: await trialSkip('gitlab-ci-nightly.yml', (d) => d.variables) }, (t) => twoNights(t, 'gitlab-ci-nightly.yml', gitlabCommands));
