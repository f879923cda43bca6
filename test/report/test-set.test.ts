// The report with a held-out test set: the test loss (and accuracy) beside the validation loss,
// and a curation comparison judged on test loss; old comparisons and runs without a test set.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stepsToReachAt, testCurve, testSeries, traceStats } from '../../src/report/analysis.js';
import { renderReport, VALIDATION_JUDGED_NOTICE } from '../../src/report/render.js';
import type { CurationComparison, CurationRun, ReportInput, ReportTraceRow } from '../../src/report/types.js';

/** A synthetic trace of 10 steps; with a test set, evaluated after steps 3, 6, 9 and 10. */
function trace(withTest: boolean): ReportTraceRow[] {
  return Array.from({ length: 10 }, (_, step) => {
    const before = 1 - 0.05 * step;
    const due = (step + 1) % 3 === 0 || step === 9;
    return {
      step,
      lr: 0.1,
      trainLoss: before + 0.1,
      validationLossBefore: before,
      validationLossAfter: before - 0.05,
      firstOrderSum: 0.05,
      firstOrderUtility: 0.05,
      secondOrderSum: null,
      secondOrderUtility: null,
      efficiencyResidual: 0,
      actualUtility: 0.05,
      taylorError: 0,
      ...(withTest
        ? { testLoss: due ? before + 0.02 : null, testAccuracy: due ? 0.5 + 0.04 * step : null }
        : {}),
    };
  });
}

function input(withTest: boolean): ReportInput {
  return {
    title: 'run',
    order: 1,
    stageStarts: [],
    values: [
      {
        id: 'a',
        group: null,
        timesSeen: 1,
        firstOrder: 0.1,
        secondOrder: null,
        stages: [0.1],
        normalized: 1,
      },
    ],
    trace: trace(withTest),
  };
}

function embeddedData(html: string): Record<string, unknown> {
  const m = html.match(/<script type="application\/json" id="inrun-report-data">([^<]*)<\/script>/);
  assert.ok(m);
  return JSON.parse(m[1]) as Record<string, unknown>;
}

test('analysis: the test curve holds only the evaluated steps, as steps done', () => {
  const curve = testCurve(trace(true))!;
  assert.deepEqual(curve.step, [3, 6, 9, 10]);
  assert.deepEqual(
    curve.loss.map((x) => Number(x.toFixed(6))),
    [0.92, 0.77, 0.62, 0.57],
  );
  assert.equal(testCurve(trace(false)), null, 'no test set: no curve, not an empty one');
  assert.equal(stepsToReachAt(curve.step, curve.loss, 0.7), 9);
  assert.equal(stepsToReachAt(curve.step, curve.loss, 0.1), null);
  const series = testSeries(trace(true))!;
  // The validation loss beside it is the one at the same weights: after the same steps.
  assert.deepEqual(
    series.validationLoss.map((x) => Number(x!.toFixed(6))),
    [0.85, 0.7, 0.55, 0.5],
  );
  const stats = traceStats(trace(true), 1);
  assert.equal(stats.finalTestLoss, curve.loss.at(-1));
  assert.equal(stats.finalTestAccuracy, 0.5 + 0.04 * 9);
  assert.equal(stats.testEvaluations, 4);
  assert.equal(traceStats(trace(false), 1).finalTestLoss, null);
});

test('report: the test loss and accuracy are drawn beside the validation loss; absent without a test set', () => {
  const html = renderReport(input(true));
  assert.match(html, /data-chart="test"/);
  assert.match(html, /<div class="k">test loss \(held out, final\)<\/div>/);
  assert.match(html, /<div class="k">test accuracy \(final\)<\/div><div class="v">86\.0%<\/div>/);
  const data = embeddedData(html) as { test: { step: number[]; testLoss: number[]; testAccuracy: number[] } };
  assert.deepEqual(data.test.step, [3, 6, 9, 10]);
  assert.equal(data.test.testAccuracy.length, 4);
  const plain = renderReport(input(false));
  assert.doesNotMatch(plain, /data-chart="test"/);
  assert.doesNotMatch(plain, /<div class="k">test loss/);
  assert.equal(embeddedData(plain).test, null);
});

function curationRun(name: string, scale: number, withTest: boolean): CurationRun {
  const validationLoss = [1, 0.9, 0.8].map((x) => x * scale);
  const run: CurationRun = {
    name,
    examples: name === 'original' ? 10 : 8,
    removed: name === 'original' ? 0 : 2,
    validationLoss,
    finalValidationLoss: validationLoss[2],
    bestValidationLoss: validationLoss[2],
    stepsToTarget: scale <= 1 ? 2 : null,
  };
  if (withTest)
    run.test = {
      step: [1, 2],
      loss: [0.95 * scale, 0.85 * scale],
      accuracy: [0.6, 0.7],
      finalLoss: 0.85 * scale,
      bestLoss: 0.85 * scale,
      finalAccuracy: 0.7,
      bestAccuracy: 0.7,
      stepsToTarget: scale <= 1 ? 2 : null,
    };
  return run;
}

function comparison(withTest: boolean): CurationComparison {
  return {
    format: 'inrun-curation',
    formatVersion: 1,
    runDir: '/tmp/run',
    rule: { kind: 'negatives', description: 'value < 0' },
    valueColumn: 'first_order',
    totalExamples: 10,
    removed: 2,
    removedValue: -0.2,
    randomSeed: 0,
    steps: 2,
    targetValidationLoss: 0.8,
    ...(withTest
      ? {
          judgedOn: 'test' as const,
          test: {
            file: '/tmp/run/curation/test.csv',
            source: 'split' as const,
            examples: 5,
            targetLoss: 0.85,
            targetAccuracy: 0.7,
          },
        }
      : {}),
    runs: {
      original: curationRun('original', 1, withTest),
      curated: curationRun('curated', 0.9, withTest),
      random: curationRun('random', 1.1, withTest),
    },
  };
}

test('report: a comparison with a test set is judged on test loss, validation loss secondary', () => {
  const html = renderReport({ ...input(true), curation: comparison(true) });
  assert.match(html, /data-chart="curation-test"/);
  assert.match(html, /data-chart="curation-test-accuracy"/);
  assert.match(html, /final test loss/);
  assert.match(html, /Secondary: validation loss/);
  assert.match(html, /test split of its training file, written to \/tmp\/run\/curation\/test\.csv/);
  assert.doesNotMatch(html, /No held-out test set/);
  const data = embeddedData(html) as {
    curation: { step: number[]; test: { step: number[]; curated: number[]; target: number[] } };
  };
  assert.deepEqual(data.curation.step, [0, 1, 2], 'the validation curves stay where they were');
  assert.deepEqual(data.curation.test.step, [1, 2]);
  assert.deepEqual(data.curation.test.target, [0.85, 0.85]);
  assert.equal(data.curation.test.curated[1], 0.85 * 0.9);
});

test('report: a comparison without a test set (or from before test sets) carries the validation notice', () => {
  const old = comparison(false);
  const html = renderReport({ ...input(false), curation: old });
  assert.match(html, /data-chart="curation"/);
  assert.doesNotMatch(html, /data-chart="curation-test"/);
  assert.ok(html.includes(VALIDATION_JUDGED_NOTICE.slice(0, 60)));
  const data = embeddedData(html) as { curation: { test: unknown; original: number[] } };
  assert.equal(data.curation.test, null);
  assert.deepEqual(data.curation.original, [1, 0.9, 0.8]);
});
