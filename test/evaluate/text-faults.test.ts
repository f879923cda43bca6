// Text faults for `inrun evaluate`: junk planted among documents in exactly the requested counts,
// the fault spec checked against the config's model kind, and the lexical baselines' scores.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkFaultSpec,
  injectTextFaults,
  parseFaultSpec,
  TEXT_FAULT_KINDS,
} from '../../src/evaluate/faults.js';
import { lexicalSuspicion } from '../../src/evaluate/text.js';
import { BOILERPLATE } from '../../src/text/junk.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

/** `n` distinct documents of 12 words each from a small vocabulary. */
function documents(n: number): string[] {
  const rng = new Rng(11);
  const vocabulary = ['river', 'state', 'union', 'people', 'law', 'war', 'peace', 'trade', 'year', 'land'];
  return Array.from({ length: n }, (_, d) =>
    [`document${d}`, ...Array.from({ length: 11 }, () => vocabulary[rng.int(vocabulary.length)])].join(' '),
  );
}

const words = (text: string) => text.split(/\s+/);

test('injectTextFaults replaces exactly round(rate·n) documents per kind, disjoint, and keeps the rest', () => {
  const texts = documents(40);
  const spec = parseFaultSpec('random-words:0.1,boilerplate:0.05,shuffled:0.15,near-duplicate:0.1', 'gpt');
  const planted = injectTextFaults(texts, spec, 7);
  assert.equal(planted.texts.length, 40);
  const counts = Object.fromEntries(
    TEXT_FAULT_KINDS.map((kind) => [kind, planted.faults.filter((k) => k === kind).length]),
  );
  assert.deepEqual(counts, { 'random-words': 4, boilerplate: 2, shuffled: 6, 'near-duplicate': 4 });
  const vocabulary = new Set(texts.flatMap((t) => words(t.toLowerCase())));
  planted.faults.forEach((kind, d) => {
    const text = planted.texts[d];
    if (kind === null) assert.equal(text, texts[d], `clean document ${d} is unchanged`);
    else if (kind === 'boilerplate')
      assert.ok(text.startsWith(BOILERPLATE) && text.length >= texts[d].length);
    else if (kind === 'shuffled') assert.deepEqual([...words(text)].sort(), [...words(texts[d])].sort());
    else if (kind === 'random-words') {
      assert.equal(words(text).length, words(texts[d]).length);
      for (const w of words(text)) assert.ok(vocabulary.has(w), w);
    } else {
      // A near-duplicate copies a clean document, not itself, and changes at most 3 of its words.
      const source = planted.sourceDocument[d]!;
      assert.equal(planted.faults[source], null);
      assert.notEqual(source, d);
      const differ = words(text).filter((w, k) => w !== words(texts[source])[k]).length;
      assert.ok(differ <= 3, `${differ} words differ`);
    }
    if (kind !== 'near-duplicate') assert.equal(planted.sourceDocument[d], null);
  });
  // The input is not modified, and a seed reproduces the planting.
  assert.deepEqual(texts, documents(40));
  assert.deepEqual(injectTextFaults(texts, spec, 7), planted);
  assert.notDeepEqual(injectTextFaults(texts, spec, 8).faults, planted.faults);
});

test('the fault spec must fit the model kind: one clear error naming the kind and the model kind', () => {
  const cases: [() => unknown, string][] = [
    [
      () => parseFaultSpec('label-flip:0.1', 'gpt'),
      "fault kind label-flip is for tables, but the config's model kind is gpt (text); text kinds: random-words, boilerplate, shuffled, near-duplicate",
    ],
    [
      () => parseFaultSpec('random-words:0.1', 'mlp'),
      "fault kind random-words is for text (model kind gpt), but the config's model kind is mlp; table kinds: label-flip, feature-noise, duplicate, near-duplicate, out-of-distribution",
    ],
    [
      () => checkFaultSpec([{ kind: 'shuffled', rate: 0.1 }]),
      'fault kind shuffled is for text (model kind gpt); table kinds: label-flip, feature-noise, duplicate, near-duplicate, out-of-distribution',
    ],
    [
      () => parseFaultSpec('junk:0.1', 'gpt'),
      'unknown fault kind "junk" (known: random-words, boilerplate, shuffled, near-duplicate)',
    ],
    [
      () => parseFaultSpec('random-words', 'gpt'),
      'fault spec entry "random-words" is not kind:rate (e.g. random-words:0.1,boilerplate:0.05; kinds: random-words, boilerplate, shuffled, near-duplicate)',
    ],
    [
      () => parseFaultSpec('shuffled:0.6', 'gpt'),
      'fault rate of shuffled must be a number in (0, 0.5], got 0.6',
    ],
    [
      () => parseFaultSpec('shuffled:0.5,boilerplate:0.3,random-words:0.2', 'gpt'),
      'fault rates add up to 1; at most 0.9 of the documents can be faulted',
    ],
    [
      () => injectTextFaults(documents(2), parseFaultSpec('near-duplicate:0.5,shuffled:0.4', 'gpt'), 1),
      'near-duplicates need a clean document to copy, but the fault rates fault all 2 documents',
    ],
    [
      () => injectTextFaults(['!!', '?'], [{ kind: 'random-words', rate: 0.5 }], 1),
      'fault injection: the documents have no words (runs of letters or digits) for random-words and near-duplicate to draw from',
    ],
    [() => injectTextFaults(documents(5), [], 0.5), 'fault seed must be an integer, got 0.5'],
  ];
  for (const [run, message] of cases)
    assert.throws(run, (e: unknown) => e instanceof InrunError && e.message === message, message);
  // near-duplicate is a kind of both: a near copy of a row, or of a document.
  assert.doesNotThrow(() => parseFaultSpec('near-duplicate:0.1', 'mlp'));
  assert.doesNotThrow(() => parseFaultSpec('near-duplicate:0.1', 'gpt'));
});

test('lexicalSuspicion: −the largest TF-IDF and BM25 similarity to a validation text, by hand', () => {
  // Words: a = the ×2, cat, sat, on, mat (6); b = the, dog, sat (3); c = cats, and, dogs (3).
  // N = 3; df: the 2, sat 2, every other word 1.
  const train = [
    { id: 'a', text: 'The cat sat on the mat.' },
    { id: 'b', text: 'The dog sat!' },
    { id: 'c', text: 'Cats, and dogs?' },
  ];
  // "!!!" has no word, so it is no query.
  const [tfidf, bm25] = lexicalSuspicion(train, ['the cat', '!!!', 'dogs and cats and dogs'])!;
  // TF-IDF, smooth idf ln((1 + N)/(1 + df)) + 1.
  const i1 = Math.log(4 / 2) + 1;
  const i2 = Math.log(4 / 3) + 1;
  const q1 = Math.hypot(i2, i1); // "the cat"
  const expectedTfidf = [
    // a against "the cat": (the 2·i2 · i2 + cat i1 · i1) / (‖q1‖ ‖a‖); "dogs and cats…" shares no word.
    (2 * i2 * i2 + i1 * i1) / (q1 * Math.sqrt(5 * i2 * i2 + 3 * i1 * i1)),
    // b against "the cat": the.
    (i2 * i2) / (q1 * Math.sqrt(2 * i2 * i2 + i1 * i1)),
    // c against "dogs and cats and dogs" = (dogs 2, and 2, cats 1): 5 i1² / (3 i1 · √3 i1).
    5 / (3 * Math.sqrt(3)),
  ];
  // BM25, k1 = 1.5, b = 0.75, idf ln(1 + (N − df + 0.5)/(df + 0.5)), avgdl = 12/3 = 4.
  const b1 = Math.log(1 + 2.5 / 1.5);
  const b2 = Math.log(1 + 1.5 / 2.5);
  const long = 1.5 * (0.25 + (0.75 * 6) / 4); // a, 6 words
  const short = 1.5 * (0.25 + (0.75 * 3) / 4); // b and c, 3 words
  const term = (idf: number, tf: number, k: number) => (idf * tf * 2.5) / (tf + k);
  const expectedBm25 = [
    term(b2, 2, long) + term(b1, 1, long),
    term(b2, 1, short),
    // Every occurrence in the query counts: dogs twice, and twice, cats once.
    5 * term(b1, 1, short),
  ];
  assert.equal(tfidf.name, 'tfidf');
  assert.equal(bm25.name, 'bm25');
  for (let d = 0; d < 3; d++) {
    // Float64 sums of a few terms: equal to the closed forms up to rounding.
    assert.ok(Math.abs(tfidf.scores[d] + expectedTfidf[d]) < 1e-12, `tfidf ${d}`);
    assert.ok(Math.abs(bm25.scores[d] + expectedBm25[d]) < 1e-12, `bm25 ${d}`);
  }
  assert.equal(lexicalSuspicion(train, ['', '...']), null, 'no validation text with a word: no baseline');
});
