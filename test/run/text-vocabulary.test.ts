import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { RUN_FILES } from '../../src/io/run-dir.js';
import { decodeSafetensors } from '../../src/io/safetensors.js';
import { parseTrainConfig } from '../../src/run/config.js';
import { trainRun } from '../../src/run/train-run.js';
import { tempDir } from '../cli/fixtures/train-data.js';

const TRAINING = {
  'sea/log.txt': 'The ship sailed west over the grey sea, and the sailors watched the waves all day.',
  'sea/whale.txt': 'At dawn the whale rose beside the ship, and the sailors lowered the boats into the sea.',
  'kitchen/bread.txt': 'Mix the flour with water and salt, knead the dough, and bake the bread until brown.',
};
// Query A uses the training text's words; query B brings words the training text never has.
const QUERY_A = 'The sailors watched the waves over the grey sea.';
const QUERY_B = 'Quantum zebras juggle xylophones beneath turquoise nebulae.';

function write(dir: string, files: Record<string, string>): string {
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

async function run(root: string, name: string, queries: Record<string, string>) {
  const validation = write(join(root, `${name}-queries`), queries);
  const config = parseTrainConfig({
    value: {
      data: { train: join(root, 'train'), validation },
      model: { kind: 'gpt', layers: 1, heads: 2, width: 16, context: 8 },
      optimizer: { kind: 'sgd', lr: 0.1 },
      batchSize: 4,
      steps: 6,
      order: 1,
      perValidation: true,
      out: join(root, name),
    },
    flagPaths: new Map(),
  });
  const result = await trainRun({ config });
  const dir = result.runDir;
  const matrix = decodeSafetensors(readFileSync(join(dir, RUN_FILES.perValidation)), 'pv');
  const values = matrix.tensors.find((t) => t.name === 'values')!;
  const validationIds = JSON.parse(matrix.metadata.validation_ids) as string[];
  const columnWeights = JSON.parse(matrix.metadata.column_weights) as number[];
  return { dir, result, values, validationIds, columnWeights };
}

test('the validation text never changes the model: a query is valued the same alone and with others', async () => {
  const root = tempDir('inrun-vocab-');
  write(join(root, 'train'), TRAINING);
  const alone = await run(root, 'alone', { 'a.txt': QUERY_A });
  const together = await run(root, 'together', { 'a.txt': QUERY_A, 'b.txt': QUERY_B });
  for (const name of [RUN_FILES.vocabulary, RUN_FILES.weightsInitial, RUN_FILES.weightsFinal])
    assert.ok(
      readFileSync(join(alone.dir, name)).equals(readFileSync(join(together.dir, name))),
      `${name} depends on the validation text`,
    );
  // B's unknown words are counted and not scored.
  assert.ok((together.result.manifest.data.text?.validationUnknownTokens ?? 0) > 0);
  assert.equal(alone.result.manifest.data.text?.validationUnknownTokens, 0);
  // Per-validation columns are query documents; a column is its share of the (token-weighted)
  // validation loss times the value for the query alone, so A's column over A's share is A's value.
  const [n, m] = together.values.shape;
  const [n1, mA] = alone.values.shape;
  assert.equal(n, n1);
  assert.deepEqual(alone.validationIds, ['a.txt']);
  assert.deepEqual(together.validationIds, ['a.txt', 'b.txt']);
  assert.equal(mA, 1);
  assert.equal(m, 2);
  const share = together.columnWeights[0];
  assert.ok(share > 0 && share < 1);
  let largest = 0;
  for (let i = 0; i < n; i++) largest = Math.max(largest, Math.abs(alone.values.data[i]));
  assert.ok(largest > 0);
  for (let i = 0; i < n; i++) {
    const fromTogether = together.values.data[i * m] / share;
    const fromAlone = alone.values.data[i];
    // float32 products summed in another order: agreement to float32 rounding of the largest value.
    assert.ok(Math.abs(fromTogether - fromAlone) <= 1e-5 * largest, `${i}: ${fromTogether} vs ${fromAlone}`);
  }
});
