import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { parquetReadObjects } from 'hyparquet';
import { z } from 'zod';
import { loadRun, RUN_FILES } from '../../src/io/run-dir.js';
import { loadModelTensors, readSafetensors } from '../../src/io/safetensors.js';
import { buildModel } from '../../src/run/build.js';
import { FIELDS, loadConfigFile, parseTrainConfig, TrainConfigSchema } from '../../src/run/config.js';
import { loadTrainingData } from '../../src/run/data.js';
import { blobs, runCli, tempDir, toCsv, toJsonl, toParquet, writeFiles } from './fixtures/train-data.js';

const train = blobs(120, { seed: 1, flip: 0.1 });
const validation = blobs(40, { seed: 2, prefix: 'v' });

function setup(extra = ''): { dir: string; config: string } {
  const dir = writeFiles(tempDir(), {
    'train.csv': toCsv(train),
    'val.csv': toCsv(validation),
    'train.jsonl': toJsonl(train),
    'val.jsonl': toJsonl(validation),
    'train.parquet': toParquet(train),
    'val.parquet': toParquet(validation),
  });
  const config = join(dir, 'run.yaml');
  writeFileSync(
    config,
    `data:
  train: train.csv
  validation: val.csv
columns:
  id: id
  group: src
model:
  kind: mlp
  hidden: [8]
optimizer:
  kind: sgd
  lr: 0.1
  momentum: 0.9
batchSize: 16
epochs: 2
stages: 2
checkpointEvery: 4
${extra}`,
  );
  return { dir, config };
}

function ok(r: { code: number; err: string }): void {
  assert.equal(r.code, 0, r.err);
}

function sha(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

const COMPARED = [
  RUN_FILES.valuesCsv,
  RUN_FILES.valuesJsonl,
  RUN_FILES.valuesParquet,
  RUN_FILES.traceCsv,
  RUN_FILES.traceJsonl,
  RUN_FILES.weightsInitial,
  RUN_FILES.weightsFinal,
];

test('train: end to end on CSV — run directory, efficiency, value sums, weights reload', async () => {
  const { dir, config } = setup();
  const out = join(dir, 'run');
  const r = await runCli('train', '--config', config, '--out', out, '--quiet');
  ok(r);
  assert.match(r.out, /values: .*values\.csv \(120 examples/);
  for (const name of [
    RUN_FILES.config,
    RUN_FILES.manifest,
    RUN_FILES.valuesCsv,
    RUN_FILES.valuesJsonl,
    RUN_FILES.valuesParquet,
    RUN_FILES.traceCsv,
    RUN_FILES.traceJsonl,
    RUN_FILES.weightsInitial,
    RUN_FILES.weightsFinal,
  ])
    assert.ok(existsSync(join(out, name)), name);
  assert.ok(!existsSync(join(out, RUN_FILES.checkpoint)), 'the checkpoint is removed once the run completes');

  const run = await loadRun(out);
  assert.equal(run.manifest.status, 'complete');
  assert.equal(run.manifest.totalSteps, 16);
  assert.deepEqual(run.manifest.stageStarts, [8]);
  assert.equal(run.manifest.data.train.sha256, sha(join(dir, 'train.csv')));
  assert.equal(run.manifest.data.validation?.sha256, sha(join(dir, 'val.csv')));
  assert.deepEqual(run.manifest.data.features, ['x1', 'x2', 'x3', 'x4']);
  assert.equal(run.manifest.data.classes, 3);
  assert.equal(run.values.length, 120);
  assert.equal(run.trace.length, 16);

  // Per step: Σ values = Taylor utility (efficiency), for both orders.
  for (const row of run.trace) {
    const scale = Math.abs(row.firstOrderUtility) + 1e-12;
    assert.ok(
      Math.abs(row.firstOrderSum - row.firstOrderUtility) <= 1e-6 * scale + 1e-12,
      `step ${row.step}`,
    );
    assert.ok(Math.abs(row.efficiencyResidual) <= 1e-6 * scale + 1e-12, `step ${row.step}`);
    assert.ok(Number.isFinite(row.validationLossAfter));
  }
  // Over the run: Σ over examples = Σ over steps of the trace's per-step sums.
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
  const close = (a: number, b: number, what: string) =>
    assert.ok(Math.abs(a - b) <= 1e-9 * (Math.abs(a) + Math.abs(b)) + 1e-12, `${what}: ${a} vs ${b}`);
  close(sum(run.values.map((v) => v.firstOrder)), sum(run.trace.map((t) => t.firstOrderSum)), 'first order');
  close(
    sum(run.values.map((v) => v.secondOrder!)),
    sum(run.trace.map((t) => t.secondOrderSum!)),
    'second order',
  );
  for (const v of run.values) close(sum(v.stages), v.secondOrder!, `stages of ${v.id}`);
  assert.equal(sum(run.values.map((v) => v.timesSeen)), 240);
  assert.deepEqual(new Set(run.values.map((v) => v.group)), new Set(['a', 'b']));

  // The three values files agree.
  const csvLines = readFileSync(join(out, RUN_FILES.valuesCsv), 'utf8').trim().split('\n');
  assert.equal(
    csvLines[0],
    'id,group,times_seen,first_order,second_order,normalized,stage_0,stage_1,' +
      'self_influence,mean_loss,aum,forgetting_events,times_correct,class_value,standard_error,momentum_credit',
  );
  // The signals: measured for this classification run, except those it did not ask for.
  for (const v of run.values) {
    for (const x of [v.selfInfluence, v.meanLoss, v.aum, v.forgettingEvents, v.timesCorrect])
      assert.ok(Number.isFinite(x), `signal of ${v.id}`);
    assert.equal(v.classValue, null, 'class values are opt-in (classValues)');
    assert.equal(v.standardError, null);
    assert.equal(v.momentumCredit, null);
  }
  // suspects.csv lists every valued example, most suspicious (lowest area under the margin) first.
  const suspects = readFileSync(join(out, RUN_FILES.suspects), 'utf8').trim().split('\n');
  assert.equal(suspects.length, 121);
  const aumOf = new Map(run.values.map((v) => [String(v.id), v.aum!]));
  const aums = suspects.slice(1).map((line) => aumOf.get(line.split(',')[1])!);
  for (let r = 1; r < aums.length; r++) assert.ok(aums[r - 1] <= aums[r]);
  const parquet = (await parquetReadObjects({
    file: new Uint8Array(readFileSync(join(out, RUN_FILES.valuesParquet))).buffer,
  })) as Record<string, unknown>[];
  assert.equal(parquet.length, 120);
  run.values.forEach((v, i) => {
    const cells = csvLines[i + 1].split(',');
    assert.equal(cells[0], v.id);
    assert.equal(Number(cells[4]), v.secondOrder);
    assert.equal(parquet[i].id, v.id);
    assert.equal(parquet[i].second_order, v.secondOrder);
    assert.equal(parquet[i].times_seen, v.timesSeen);
  });
  const traceCsv = readFileSync(join(out, RUN_FILES.traceCsv), 'utf8').split('\n');
  assert.match(
    traceCsv[0],
    /^step,lr,batchSize,clipFactor,trainLoss,validationLossBefore,validationLossAfter,/,
  );

  // config.json is itself a valid config, and the final weights load into the model it builds.
  const saved = parseTrainConfig(await loadConfigFile(join(out, RUN_FILES.config)));
  const model = buildModel(saved, await loadTrainingData(saved));
  const final = await readSafetensors(join(out, RUN_FILES.weightsFinal));
  loadModelTensors(model, final.tensors, 'final');
  assert.deepEqual(
    final.tensors.map((t) => [t.name, t.shape]),
    run.manifest.model.tensors.map((t) => [t.name, t.shape]),
  );
  assert.notDeepEqual(run.weights.initial[0].data, run.weights.final[0].data);
});

test('train: same config and seed give byte-identical values, trace and weights', async () => {
  const { dir, config } = setup('recordBatchIds: true\nperValidation: true\n');
  const a = join(dir, 'a');
  const b = join(dir, 'b');
  ok(
    await runCli('train', '--config', config, '--out', a, '--quiet', '--optimizer', 'adamw', '--lr', '0.01'),
  );
  ok(
    await runCli('train', '--config', config, '--out', b, '--quiet', '--optimizer', 'adamw', '--lr', '0.01'),
  );
  for (const name of [...COMPARED, RUN_FILES.perValidation])
    assert.ok(readFileSync(join(a, name)).equals(readFileSync(join(b, name))), name);
  const run = await loadRun(a);
  assert.equal(run.trace[0].batchIds?.length, 16);
  assert.ok(run.trace.every((t) => typeof t.linearisationGap === 'number'));
  assert.deepEqual(run.perValidation?.shape, [120, 40]);
  // Per-validation values add up to the first-order value.
  const pv = run.perValidation!;
  run.values.forEach((v, i) => {
    let s = 0;
    for (let j = 0; j < 40; j++) s += pv.values[i * 40 + j];
    assert.ok(Math.abs(s - v.firstOrder) <= 1e-9 * Math.abs(v.firstOrder) + 1e-12);
  });
  // Another seed gives other values.
  const c = join(dir, 'c');
  ok(await runCli('train', '--config', config, '--out', c, '--quiet', '--seed', '7'));
  assert.ok(!readFileSync(join(a, RUN_FILES.valuesCsv)).equals(readFileSync(join(c, RUN_FILES.valuesCsv))));
});

test('train: CSV, JSONL and Parquet inputs of the same data give identical values', async () => {
  const { dir, config } = setup();
  const outs: string[] = [];
  for (const ext of ['csv', 'jsonl', 'parquet']) {
    const out = join(dir, `run-${ext}`);
    ok(
      await runCli(
        'train',
        '--config',
        config,
        '--out',
        out,
        '--quiet',
        '--train',
        join(dir, `train.${ext}`),
        '--validation',
        join(dir, `val.${ext}`),
      ),
    );
    outs.push(out);
  }
  for (const name of COMPARED)
    for (const out of outs.slice(1))
      assert.ok(readFileSync(join(outs[0], name)).equals(readFileSync(join(out, name))), `${name} of ${out}`);
});

test('train: flags alone, validation split, binary and regression tasks, JSON progress', async () => {
  const { dir } = setup();
  const out = join(dir, 'split');
  const r = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation-split',
    '0.25',
    '--id-column',
    'id',
    '--steps',
    '5',
    '--batch-size',
    '10',
    '--out',
    out,
    '--json',
  );
  ok(r);
  const events = r.out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { event: string; step?: number });
  assert.deepEqual(
    events.map((e) => e.event),
    ['start', 'step', 'step', 'step', 'step', 'step', 'done'],
  );
  const run = await loadRun(out);
  assert.equal(run.manifest.data.trainExamples, 90);
  assert.equal(run.manifest.data.validationExamples, 30);
  assert.equal(run.manifest.data.validation, null);
  assert.equal((run.config.model as { kind: string }).kind, 'logreg');

  // Binary (labels 0/1 from label>0) and regression (label as a real target).
  const binary = train.map((row) => ({ ...row, label: row.label > 0 ? 1 : 0 }));
  writeFiles(dir, { 'binary.csv': toCsv(binary) });
  for (const [task, file] of [
    ['binary', 'binary.csv'],
    ['regression', 'train.csv'],
  ]) {
    const o = join(dir, task);
    ok(
      await runCli(
        'train',
        '--train',
        join(dir, file),
        '--validation-split',
        '0.2',
        '--task',
        task,
        '--model',
        'mlp',
        '--hidden',
        '4',
        '--epochs',
        '1',
        '--order',
        '1',
        '--out',
        o,
        '--quiet',
      ),
    );
    const loaded = await loadRun(o);
    assert.equal(loaded.values[0].secondOrder, null);
    assert.equal(loaded.manifest.data.classes, null);
  }
});

test('train: flags override the config file; --force; --init-weights; --help lists defaults', async () => {
  const { dir, config } = setup();
  const out = join(dir, 'run');
  ok(await runCli('train', '--config', config, '--out', out, '--quiet', '--steps', '3', '--lr', '0.05'));
  const run = await loadRun(out);
  assert.equal(run.manifest.totalSteps, 3, '--steps replaces the file’s epochs');
  assert.equal((run.config.optimizer as { lr: number }).lr, 0.05);
  assert.equal((run.config.optimizer as { momentum: number }).momentum, 0.9);

  const again = await runCli('train', '--config', config, '--out', out, '--quiet');
  assert.equal(again.code, 1);
  assert.match(again.err, /already exists; choose another --out or add --force/);
  ok(await runCli('train', '--config', config, '--out', out, '--quiet', '--force'));

  const init = join(dir, 'init');
  ok(
    await runCli(
      'train',
      '--config',
      config,
      '--out',
      init,
      '--quiet',
      '--init-weights',
      join(out, RUN_FILES.weightsFinal),
    ),
  );
  assert.ok(
    readFileSync(join(init, RUN_FILES.weightsInitial)).equals(
      readFileSync(join(out, RUN_FILES.weightsFinal)),
    ),
  );

  const help = await runCli('train', '--help');
  assert.equal(help.code, 0);
  for (const re of [
    /optimizer\.lr\s+number > 0 \[default: 0\.05\]/,
    /batchSize\s+integer ≥ 1 \[default: 32\]/,
    /--resume <dir>/,
  ])
    assert.match(help.out, re);
});

test('train: divergence stops with one line and marks the run failed', async () => {
  const { dir } = setup();
  const out = join(dir, 'diverged');
  const r = await runCli(
    'train',
    '--train',
    join(dir, 'train.csv'),
    '--validation',
    join(dir, 'val.csv'),
    '--task',
    'regression',
    '--lr',
    '1000',
    '--epochs',
    '3',
    '--out',
    out,
    '--quiet',
  );
  assert.equal(r.code, 1);
  // The exploding loss is warned about as it happens (even with --quiet), then the run stops.
  assert.match(r.err, /^inrun: warning: the validation loss rose to [^\n]* Lower optimizer\.lr \(now 1000\)/);
  assert.match(
    r.err,
    /\ninrun: error: training diverged at step \d+: the training loss is not finite[^\n]*\n$/,
  );
  const manifest = JSON.parse(readFileSync(join(out, RUN_FILES.manifest), 'utf8'));
  assert.equal(manifest.status, 'failed');
  assert.match(manifest.message, /training diverged/);
  assert.ok(manifest.warnings.some((w: { code: string }) => w.code === 'exploding-loss'));
  assert.ok(!existsSync(join(out, RUN_FILES.valuesCsv)));
});

test('train: every config field of the schema is documented for --help, and nothing else is', () => {
  type JsonSchema = {
    type?: string;
    properties?: Record<string, JsonSchema>;
    oneOf?: JsonSchema[];
    anyOf?: JsonSchema[];
  };
  const leaves = (schema: JsonSchema, prefix: string, out: Set<string>): Set<string> => {
    const alternatives = schema.oneOf ?? schema.anyOf;
    if (alternatives) for (const a of alternatives) leaves(a, prefix, out);
    else if (schema.type === 'object' && schema.properties)
      for (const [key, sub] of Object.entries(schema.properties))
        leaves(sub, prefix ? `${prefix}.${key}` : key, out);
    else out.add(prefix);
    return out;
  };
  const schema = z.toJSONSchema(TrainConfigSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const inSchema = [...leaves(schema, '', new Set())].sort();
  const documented = FIELDS.map((f) => f.path).sort();
  assert.deepEqual(documented, inSchema);
  for (const f of FIELDS) assert.ok(f.help.length > 0 && f.type.length > 0, f.path);
});
