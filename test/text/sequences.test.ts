import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IGNORE_INDEX } from '../../src/losses/softmax-cross-entropy.js';
import {
  splitIntoSequences,
  type TextDocument,
  type TextSequence,
  TextSequenceDataset,
} from '../../src/text/sequences.js';
import { getTokenizer, type Tokenizer } from '../../src/text/tokenizer.js';
import { InrunError } from '../../src/util/errors.js';

const bytes = getTokenizer('bytes');
const gpt2 = getTokenizer('gpt2');

const DOCS: TextDocument[] = [
  { id: 'a', source: 'test', text: 'The quick brown fox jumps over the lazy dog.' },
  { id: 'b', source: 'other', text: 'Short.' },
  { id: 'c', source: 'test', text: 'Émoji 😀 and 漢字 cross token boundaries in bytes mode.' },
  { id: 'd', source: 'test', text: 'x'.repeat(64) },
];

function docIds(tokenizer: Tokenizer, doc: TextDocument, appendEot: boolean): number[] {
  const ids = Array.from(tokenizer.encode(doc.text));
  if (appendEot) ids.push(tokenizer.eotToken!);
  return ids;
}

/** Checks every invariant of one sequence against its document's ids. */
function checkSequence(seq: TextSequence, ids: number[], context: number, pad: number): void {
  const L = seq.length;
  assert.ok(L >= 1 && L <= context, `length ${L}`);
  assert.equal(seq.id, `${seq.documentId}#${seq.index}`);
  assert.equal(seq.inputs.length, context);
  assert.equal(seq.targets.length, context);
  assert.deepEqual(
    Array.from(seq.tokens),
    ids.slice(seq.offset, seq.offset + L + 1),
    'tokens = window of doc',
  );
  for (let i = 0; i < context; i++) {
    if (i < L) {
      assert.equal(seq.inputs[i], seq.tokens[i]);
      assert.equal(seq.targets[i], seq.tokens[i + 1], 'targets are inputs shifted by one');
    } else {
      assert.equal(seq.inputs[i], pad, 'input padding');
      assert.equal(seq.targets[i], IGNORE_INDEX, 'target padding is -1');
    }
  }
}

for (const [name, tokenizer] of [
  ['bytes', bytes],
  ['gpt2', gpt2],
] as const) {
  for (const context of [1, 3, 8, 16, 1000]) {
    for (const appendEot of [true, false]) {
      test(`splitIntoSequences (${name}, context ${context}, appendEot ${appendEot}): coverage, shift, padding, offsets`, () => {
        const { sequences, skipped, documentCount, tokenCount } = splitIntoSequences(DOCS, tokenizer, {
          context,
          appendEot,
        });
        const used = DOCS.filter((d) => tokenizer.encode(d.text).length >= 2);
        assert.equal(documentCount, used.length);
        assert.deepEqual(
          skipped.map((s) => s.documentId),
          DOCS.filter((d) => !used.includes(d)).map((d) => d.id),
        );
        let total = 0;
        for (const doc of used) {
          const ids = docIds(tokenizer, doc, appendEot);
          total += ids.length;
          const mine = sequences.filter((s) => s.documentId === doc.id);
          assert.equal(mine.length, Math.ceil((ids.length - 1) / context), 'k = ceil((n-1)/context)');
          const inputs: number[] = [];
          const targets: number[] = [];
          mine.forEach((seq, k) => {
            assert.equal(seq.index, k);
            assert.equal(seq.offset, k * context, 'offset = k · context');
            assert.equal(seq.source, doc.source);
            checkSequence(seq, ids, context, tokenizer.eotToken!);
            if (k < mine.length - 1) assert.equal(seq.length, context, 'only the last one is short');
            inputs.push(...seq.inputs.subarray(0, seq.length));
            targets.push(...seq.targets.subarray(0, seq.length));
          });
          // Concatenated inputs are the document's ids (all but the last), targets all but the first.
          assert.deepEqual(inputs, ids.slice(0, -1));
          assert.deepEqual(targets, ids.slice(1));
          if (appendEot)
            assert.deepEqual(inputs, Array.from(tokenizer.encode(doc.text)), 'inputs = doc tokens');
        }
        assert.equal(tokenCount, total);
        assert.equal(new Set(sequences.map((s) => s.id)).size, sequences.length, 'ids unique');
      });
    }
  }
}

test('splitIntoSequences: an exact multiple of context needs no padding', () => {
  // 8 bytes + eot = 9 ids → 8 (input, target) pairs → exactly 2 sequences of 4.
  const { sequences } = splitIntoSequences([{ id: 'e', source: 's', text: 'abcdefgh' }], bytes, {
    context: 4,
  });
  assert.deepEqual(
    sequences.map((s) => [s.id, s.offset, s.length]),
    [
      ['e#0', 0, 4],
      ['e#1', 4, 4],
    ],
  );
  assert.ok(sequences.every((s) => !s.targets.includes(IGNORE_INDEX)));
  assert.deepEqual(Array.from(sequences[1].targets), [102, 103, 104, 256]);
  assert.deepEqual(Array.from(sequences[1].inputs), [101, 102, 103, 104]);
});

test('splitIntoSequences: a short last chunk is padded (inputs with padToken, targets with -1)', () => {
  const { sequences } = splitIntoSequences([{ id: 'p', source: 's', text: 'abcdef' }], bytes, {
    context: 4,
    padToken: 0,
  });
  // ids: a b c d e f EOT (7) → windows at 0 (4 pairs) and 4 (2 pairs).
  assert.equal(sequences.length, 2);
  assert.deepEqual(Array.from(sequences[1].tokens), [101, 102, 256]);
  assert.deepEqual(Array.from(sequences[1].inputs), [101, 102, 0, 0]);
  assert.deepEqual(Array.from(sequences[1].targets), [102, 256, -1, -1]);
  assert.equal(sequences[1].length, 2);
});

test('splitIntoSequences: stride < context gives overlapping windows that end at the document end', () => {
  const doc = { id: 'o', source: 's', text: 'abcdefghij' }; // 10 bytes + eot = 11 ids
  const ids = docIds(bytes, doc, true);
  const { sequences } = splitIntoSequences([doc], bytes, { context: 4, stride: 2 });
  assert.deepEqual(
    sequences.map((s) => [s.offset, s.length]),
    [
      [0, 4],
      [2, 4],
      [4, 4],
      [6, 4],
    ],
    'stops once a window reaches the last id',
  );
  for (const seq of sequences) checkSequence(seq, ids, 4, 256);
  // Every target is predicted at least once.
  const predicted = new Set<number>();
  for (const s of sequences) for (let i = 0; i < s.length; i++) predicted.add(s.offset + i + 1);
  assert.equal(predicted.size, ids.length - 1);
});

test('splitIntoSequences: empty and one-token documents are skipped with reasons, never silently', () => {
  const docs: TextDocument[] = [
    { id: 'empty', source: 'src1', text: '' },
    { id: 'one', source: 'src2', text: 'x' },
    { id: 'ok', source: 'src1', text: 'xy' },
    { id: 'gpt-one', source: 'src3', text: ' the' },
  ];
  const byteResult = splitIntoSequences(docs, bytes, { context: 4 });
  assert.deepEqual(
    byteResult.skipped.map((s) => [s.documentId, s.source, s.reason, s.tokenCount]),
    [
      ['empty', 'src1', 'empty', 0],
      ['one', 'src2', 'too-short', 1],
    ],
  );
  assert.match(byteResult.skipped[0].message, /"empty" \(src1\): its text is empty/);
  assert.match(byteResult.skipped[1].message, /"one" \(src2\): its text encodes to 1 token \(need ≥ 2\)/);
  assert.deepEqual(
    byteResult.sequences.map((s) => s.documentId),
    ['ok', 'gpt-one'],
  );
  // With GPT-2, "xy" and " the" are single tokens: too short there, though fine as bytes.
  const gptResult = splitIntoSequences(docs, gpt2, { context: 4 });
  assert.deepEqual(
    gptResult.skipped.map((s) => [s.documentId, s.reason, s.tokenCount]),
    [
      ['empty', 'empty', 0],
      ['one', 'too-short', 1],
      ['ok', 'too-short', 1],
      ['gpt-one', 'too-short', 1],
    ],
  );
  assert.equal(gptResult.sequences.length, 0);
  assert.equal(gptResult.documentCount, 0);
});

test('splitIntoSequences: validates options and documents', () => {
  const doc = [{ id: 'a', source: 's', text: 'abc' }];
  const bad: [unknown, RegExp][] = [
    [{ context: 0 }, /context must be ≥ 1/],
    [{ context: 2.5 }, /context must be an integer/],
    [{ context: 4, stride: 5 }, /stride must be in \[1, 4\]/],
    [{ context: 4, stride: 0 }, /stride must be in \[1, 4\]/],
    [{ context: 4, strides: 2 }, /unknown option "strides"/],
    [{ context: 4, padToken: 257 }, /padToken must be in \[0, 256\]/],
    [{ context: 4, appendEot: 'yes' }, /appendEot must be a boolean/],
    [undefined, /options must be an object/],
  ];
  for (const [options, message] of bad) {
    assert.throws(
      () => splitIntoSequences(doc, bytes, options as never),
      (e: Error) => e instanceof InrunError && message.test(e.message),
      String(message),
    );
  }
  const dup = [
    { id: 'a', source: 's', text: 'abc' },
    { id: 'a', source: 't', text: 'def' },
  ];
  assert.throws(() => splitIntoSequences(dup, bytes, { context: 4 }), /duplicate document id "a"/);
  assert.throws(
    () => splitIntoSequences([{ id: '', source: 's', text: 'abc' }], bytes, { context: 4 }),
    /id must be a non-empty string/,
  );
  assert.throws(
    () => splitIntoSequences([{ id: 'n', source: 's', text: 42 as never }], bytes, { context: 4 }),
    /"n": text must be a string/,
  );
  assert.throws(
    () => splitIntoSequences([{ id: 'sur', source: 'file.txt', text: 'ab\ud800' }], gpt2, { context: 4 }),
    (e: Error) =>
      e instanceof InrunError &&
      /document "sur" \(file.txt\): .*surrogate U\+D800 at index 2/.test(e.message),
  );
  const noEot: Tokenizer = {
    name: 'plain',
    vocabSize: 256,
    encode: (text) => bytes.encode(text),
    decode: (ids) => bytes.decode(ids),
  };
  assert.throws(
    () => splitIntoSequences(doc, noEot, { context: 4, appendEot: true }),
    /has no end-of-text token/,
  );
  const { sequences } = splitIntoSequences(doc, noEot, { context: 4 });
  assert.deepEqual(Array.from(sequences[0].inputs), [97, 98, 0, 0], 'no eot: not appended, pads with 0');
  assert.deepEqual(Array.from(sequences[0].targets), [98, 99, -1, -1]);
});

test('TextSequenceDataset: ids, groups and batches of [context, 1] token ids with -1 targets', () => {
  const { sequences } = splitIntoSequences(DOCS, bytes, { context: 16 });
  const data = new TextSequenceDataset('train', sequences, 16);
  assert.equal(data.size, sequences.length);
  assert.deepEqual(data.example, { tokens: 16, width: 1 });
  assert.equal(data.id(0), 'a#0');
  assert.equal(data.group(0), 'test');
  const b = sequences.findIndex((s) => s.documentId === 'b');
  assert.equal(data.group(b), 'other');
  assert.equal(data.sequence(b).offset, 0);
  for (const dtype of ['float32', 'float64'] as const) {
    const { input, targets } = data.batch([b, 0], dtype);
    assert.deepEqual([input.n, input.tokens, input.width], [2, 16, 1]);
    assert.equal(input.data.length, 0, 'token batches carry ids, not features');
    assert.deepEqual(Array.from(input.ids!.subarray(0, 16)), Array.from(sequences[b].inputs));
    assert.deepEqual(Array.from(targets.subarray(0, 16)), Array.from(sequences[b].targets));
    assert.deepEqual(Array.from(targets.subarray(16)), Array.from(sequences[0].targets));
    assert.ok(targets instanceof Int32Array && targets.includes(-1), 'the short sequence is padded');
  }
  const sub = data.subset([b], 'one');
  assert.equal(sub.size, 1);
  assert.equal(sub.id(0), sequences[b].id);
});

test('TextSequenceDataset.batch refills a previous batch of its shape, and allocates for any other', () => {
  const { sequences } = splitIntoSequences(DOCS, bytes, { context: 16 });
  const data = new TextSequenceDataset('train', sequences, 16);
  const last = sequences.length - 1;
  const first = data.batch([0, 1], 'float32');
  const again = data.batch([last, 0], 'float32', first);
  const fresh = data.batch([last, 0], 'float32');
  assert.equal(again.input.ids, first.input.ids, 'the ids array is refilled');
  assert.equal(again.targets, first.targets, 'the targets array is refilled');
  assert.deepEqual(Array.from(again.input.ids!), Array.from(fresh.input.ids!));
  assert.deepEqual(Array.from(again.targets), Array.from(fresh.targets));
  assert.deepEqual([again.input.n, again.input.tokens, again.input.width], [2, 16, 1]);
  // Another batch size or element type: new arrays, the old batch untouched.
  const before = Array.from(again.input.ids!);
  const bigger = data.batch([0, 1, last], 'float32', again);
  assert.notEqual(bigger.input.ids, again.input.ids);
  assert.equal(bigger.input.ids!.length, 48);
  const other = data.batch([1, 0], 'float64', again);
  assert.notEqual(other.input.ids, again.input.ids);
  assert.deepEqual(Array.from(again.input.ids!), before);
});

test('TextSequenceDataset: validates up front', () => {
  const { sequences } = splitIntoSequences(DOCS, bytes, { context: 8 });
  assert.throws(
    () => new TextSequenceDataset('d', sequences, 16),
    /inputs must be an Int32Array of length 16/,
  );
  assert.throws(() => new TextSequenceDataset('d', [], 8), /no sequences/);
  assert.throws(
    () => new TextSequenceDataset('d', [sequences[0], sequences[0]], 8),
    /id "a#0" is used by sequences 0 and 1/,
  );
  const bad = { ...sequences[0], targets: Int32Array.from(sequences[0].targets, () => -2) };
  assert.throws(() => new TextSequenceDataset('d', [bad], 8), /target 0 is -2/);
  assert.throws(
    () => new TextSequenceDataset('d', sequences, 8).batch([sequences.length], 'float32'),
    /no sequence at index/,
  );
});
