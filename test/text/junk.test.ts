// Junk text: each kind is what its name says, and a seed reproduces it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  BOILERPLATE,
  JUNK_KINDS,
  junkText,
  junkVocabulary,
  NEAR_DUPLICATE_EDITS,
} from '../../src/text/junk.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const SOURCE =
  'It is the duty of the President to give to the Congress information of the state of the Union, ' +
  'and to recommend to their consideration such measures as he shall judge necessary and expedient. ' +
  'The year has brought peace abroad and a harvest at home.';
const VOCABULARY = junkVocabulary([SOURCE, 'A second clean text, with Other words: 1790 and 2nd.']);
const words = (text: string) => text.split(/\s+/);

test('junkVocabulary: the sorted distinct lower-cased words of the texts', () => {
  assert.deepEqual(junkVocabulary(['The cat, the CAT and 2 dogs!', 'Dogs?']), [
    '2',
    'and',
    'cat',
    'dogs',
    'the',
  ]);
  assert.ok(VOCABULARY.includes('1790') && VOCABULARY.includes('president'));
});

test('every kind is deterministic per seed, and another seed gives other junk', () => {
  for (const kind of JUNK_KINDS) {
    const make = (seed: number) => junkText(kind, SOURCE, new Rng(seed), { vocabulary: VOCABULARY });
    assert.equal(make(3), make(3), kind);
    // Boilerplate draws nothing: it is the same for every seed.
    if (kind === 'boilerplate') assert.equal(make(3), make(4));
    else assert.notEqual(make(3), make(4), kind);
  }
});

test('boilerplate repeats the page furniture to at least the source length (or the length asked for)', () => {
  const text = junkText('boilerplate', SOURCE, new Rng(1));
  const repeats = Math.ceil(SOURCE.length / BOILERPLATE.length);
  assert.equal(text, BOILERPLATE.repeat(repeats));
  assert.ok(repeats >= 2 && text.length >= SOURCE.length);
  assert.equal(junkText('boilerplate', SOURCE, new Rng(1), { length: 1200 }).length, BOILERPLATE.length * 10);
  // An empty source still gets one copy.
  assert.equal(junkText('boilerplate', '', new Rng(1)), BOILERPLATE);
});

test("shuffled is a permutation of the source's words", () => {
  const source = words(SOURCE);
  for (const seed of [1, 2, 3]) {
    const shuffled = words(junkText('shuffled', SOURCE, new Rng(seed)));
    assert.deepEqual([...shuffled].sort(), [...source].sort());
    assert.notDeepEqual(shuffled, source, `seed ${seed}: 45 words shuffled back into their own order`);
  }
});

test(`near-duplicate is the source with at most ${NEAR_DUPLICATE_EDITS} words replaced by vocabulary words`, () => {
  const source = words(SOURCE);
  for (let seed = 0; seed < 20; seed++) {
    const copy = words(junkText('near-duplicate', SOURCE, new Rng(seed), { vocabulary: VOCABULARY }));
    assert.equal(copy.length, source.length);
    const changed = copy.flatMap((w, k) => (w !== source[k] ? [w] : []));
    assert.ok(changed.length <= 3, `seed ${seed}: ${changed.length} words differ`);
    for (const w of changed) assert.ok(VOCABULARY.includes(w), w);
  }
});

test('random-words has as many words as the source, all from the vocabulary', () => {
  const text = words(junkText('random-words', SOURCE, new Rng(5), { vocabulary: VOCABULARY }));
  assert.equal(text.length, words(SOURCE).length);
  for (const w of text) assert.ok(VOCABULARY.includes(w), w);
  assert.ok(new Set(text).size > 10, 'drawn, not repeated');
});

test('junk needing words without a vocabulary, and unknown kinds, are clear errors', () => {
  assert.throws(
    () => junkText('random-words', SOURCE, new Rng(1)),
    (e: unknown) =>
      e instanceof InrunError &&
      e.message === 'random-words junk needs a vocabulary of at least one word to draw from',
  );
  assert.throws(
    () => junkText('gibberish' as never, SOURCE, new Rng(1)),
    (e: unknown) =>
      e instanceof InrunError &&
      e.message ===
        'unknown junk kind "gibberish" (known: random-words, boilerplate, shuffled, near-duplicate)',
  );
});
