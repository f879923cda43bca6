import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runDigitsDemo } from '../../src/demo/digits-demo.js';
import { InrunError } from '../../src/util/errors.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

test('digits demo: negative values find the flipped labels; values.csv has every example', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-demo-'));
  dirs.push(dir);
  const out = join(dir, 'nested', 'run');
  const lines: string[] = [];
  const result = await runDigitsDemo({ quiet: true, seed: 0, out }, (line) => lines.push(line));
  assert.ok(result.auroc >= 0.85, `AUROC ${result.auroc}`);
  assert.ok(
    result.relativeEfficiencyResidual < 1e-4,
    `efficiency residual ${result.relativeEfficiencyResidual}`,
  );
  assert.ok(result.finalValidationLoss < result.initialValidationLoss);
  assert.equal(result.harmful.length, 10);
  assert.ok(result.harmful.filter((h) => h.flipped).length >= 7);
  // Quiet: the result lines only.
  assert.ok(lines.some((l) => l.startsWith('AUROC')));
  assert.ok(!lines.some((l) => l.startsWith('step')));

  const csv = await readFile(join(out, 'values.csv'), 'utf8');
  const rows = csv.trimEnd().split('\n');
  assert.equal(rows.length, 2001);
  assert.equal(
    rows[0],
    'id,group,times_seen,first_order,second_order,normalized,stage_0,observed_label,original_label,flipped',
  );
  const flippedRows = rows.slice(1).filter((r) => r.endsWith(',true'));
  assert.equal(flippedRows.length, 200);
});

test('digits demo: rejects bad options before training', async () => {
  await assert.rejects(
    runDigitsDemo({ order: 3 as 1 }, () => {}),
    (e) => e instanceof InrunError && /order/.test(e.message),
  );
  await assert.rejects(
    runDigitsDemo({ lr: 0 }, () => {}),
    /lr/,
  );
  await assert.rejects(
    runDigitsDemo({ batchSize: 5000 }, () => {}),
    /batch size \(5000\)/,
  );
});
