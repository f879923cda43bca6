// The report shows a run's warnings first, in a box of their own: from a run directory's manifest
// or given with a trainer; escaped like everything else; no box for a run without warnings.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TensorDataset } from '../../src/data/dataset.js';
import type { LoadedRun, RunWarning } from '../../src/io/run-dir.js';
import { mlp } from '../../src/models/builders.js';
import { sgd } from '../../src/optim/sgd.js';
import { renderReport, reportInputFromRun, reportInputFromTrainer } from '../../src/report/index.js';
import { train } from '../../src/train/trainer.js';
import { Rng } from '../../src/util/rng.js';

function blobs(n: number, seed: number): TensorDataset {
  const rng = new Rng(seed);
  const features = new Float64Array(n * 3);
  const labels: number[] = [];
  for (let i = 0; i < n; i++) {
    const y = rng.int(3);
    for (let k = 0; k < 3; k++) features[i * 3 + k] = rng.normal() + (k === y ? 1.5 : 0);
    labels.push(y);
  }
  return new TensorDataset({ features, width: 3, labels, labelKind: 'class' });
}

const trainer = train({
  model: mlp({ inputs: 3, hidden: [4], outputs: 3, seed: 1 }),
  optimizer: sgd({ lr: 0.1 }),
  data: blobs(40, 1),
  batchSize: 10,
  epochs: 2,
  valuation: { validation: blobs(20, 2), order: 2 },
});

const WARNINGS: RunWarning[] = [
  {
    code: 'feature-scale',
    step: null,
    message:
      'features are far from unit scale: root mean square "<b>income</b>" 5e+4. Set data.standardize: true.',
  },
  {
    code: 'exploding-loss',
    step: 4,
    message: 'the validation loss rose to 12.1 after step 4. Lower optimizer.lr (now 5).',
  },
  { code: 'some-future-check', step: 7, message: 'a check this version does not know' },
];

test('warnings are shown at the top, before the summary, each with its step and what to change', () => {
  const html = renderReport(reportInputFromTrainer(trainer, { warnings: WARNINGS }));
  const box = html.indexOf('<section id="warnings" class="warnings"');
  assert.ok(box > 0);
  assert.ok(box < html.indexOf('<section id="summary">'), 'above everything else');
  assert.ok(box > html.indexOf('</header>'));
  assert.match(html, /<h2>⚠ 3 warnings: the values of this run may be meaningless<\/h2>/);
  assert.match(html, /<nav><a href="#warnings">Warnings<\/a><a href="#summary">/);
  const section = html.slice(box, html.indexOf('</section>', box));
  assert.match(section, /<b>Feature scale<\/b><span class="at">before training<\/span>/);
  assert.match(
    section,
    /<b>Exploding loss<\/b><span class="at">step 4<\/span><br>the validation loss rose to 12\.1 after step 4\. Lower optimizer\.lr \(now 5\)\./,
  );
  assert.match(section, /<b>some-future-check<\/b><span class="at">step 7<\/span>/);
  // Messages are text: markup in them (a column name, say) is escaped.
  assert.match(section, /&quot;&lt;b&gt;income&lt;\/b&gt;&quot;/);
  assert.doesNotMatch(section, /<b>income<\/b>/);
  assert.ok(
    section.indexOf('Feature scale') < section.indexOf('Exploding loss'),
    'in the order they were seen',
  );
});

test('no warnings: no box and no link', () => {
  const html = renderReport(reportInputFromTrainer(trainer));
  assert.doesNotMatch(html, /id="warnings"/);
  assert.doesNotMatch(html, /href="#warnings"/);
  const one = renderReport(reportInputFromTrainer(trainer, { warnings: WARNINGS.slice(1, 2) }));
  assert.match(one, /<h2>⚠ 1 warning: /);
});

test('a run directory’s report takes the warnings from its manifest', () => {
  const valuer = trainer.valuer!;
  const run = {
    dir: 'runs/x',
    config: { order: 2 },
    manifest: { stageStarts: [], warnings: WARNINGS.slice(1, 2) },
    values: valuer.ledger.all().map((e) => ({
      id: e.id,
      group: null,
      timesSeen: e.timesSeen,
      firstOrder: e.firstOrder,
      secondOrder: e.secondOrder,
      stages: e.stages,
      normalized: e.normalized,
    })),
    trace: valuer.trace,
  } as unknown as LoadedRun;
  assert.deepEqual(reportInputFromRun(run).warnings, WARNINGS.slice(1, 2));
  assert.match(renderReport(reportInputFromRun(run)), /<b>Exploding loss<\/b>/);
  // Runs written before warnings were recorded have none in their manifest.
  const older = { ...run, manifest: { stageStarts: [] } } as unknown as LoadedRun;
  assert.deepEqual(reportInputFromRun(older).warnings, []);
});
