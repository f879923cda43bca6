import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runLanguageDemo } from '../../src/demo/lm-demo.js';
import { loadBundledCorpus } from '../../src/text/corpora.js';

test('a training document that copies the validation text verbatim is ranked first of the mixture', async () => {
  // Validation text: a short held-out chapter, evaluated whole; the mixture gets an exact copy of it.
  const chapter = loadBundledCorpus('moby-dick').find((doc) => doc.id === 'moby-dick/chapter-001')!;
  const copy = { id: 'planted/copy-of-validation', source: 'planted', text: chapter.text };
  const result = await runLanguageDemo(
    {
      steps: 72,
      batchSize: 16,
      context: 32,
      layers: 2,
      width: 32,
      heads: 2,
      lr: 3e-3,
      documentsPerSource: 2,
      validation: [chapter],
      validationSequences: 1000,
      extraTraining: [copy],
      out: null,
      quiet: true,
    },
    () => {},
  );
  const ranking = result.documents.map((doc) => doc.documentId);
  assert.equal(ranking[0], copy.id, `ranking starts ${ranking.slice(0, 5).join(', ')}`);
  assert.ok(result.validationLoss.last < result.validationLoss.first, 'training lowered the validation loss');
  // Per-source stage values add up to the source totals.
  for (const row of result.sources) {
    const sum = row.stages.reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - row.total) <= 1e-9 * Math.max(1, Math.abs(row.total)));
  }
});
