import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadBundledCorpus } from '../../src/text/corpora.js';
import {
  bm25Ranking,
  LexicalIndex,
  type LexicalScore,
  lexicalWords,
  ngramOverlapRanking,
  tfidfRanking,
} from '../../src/text/lexical.js';
import { InrunError } from '../../src/util/errors.js';

// The three-document corpus every hand computation below uses. Words (after lexicalWords):
//   a: the cat sat on the mat   (6 words: the ×2, cat, sat, on, mat)
//   b: the dog sat              (3 words)
//   c: cats and dogs            (3 words; "cats" ≠ "cat": no stemming)
// N = 3; document frequencies: the 2, sat 2; cat, on, mat, dog, cats, and, dogs 1.
const DOCS = [
  { id: 'a', text: 'The cat sat on the mat.' },
  { id: 'b', text: 'The dog sat!' },
  { id: 'c', text: 'Cats, and dogs?' },
];

function close(actual: number, expected: number, what: string): void {
  assert.ok(
    Math.abs(actual - expected) <= 1e-12 * Math.max(1, Math.abs(expected)),
    `${what}: ${actual} ≠ ${expected}`,
  );
}

function expectScores(ranking: LexicalScore[], expected: [string, number][]): void {
  assert.deepEqual(
    ranking.map((r) => [r.id, r.rank]),
    expected.map(([id], i) => [id, i + 1]),
  );
  expected.forEach(([id, score], i) => {
    close(ranking[i].score, score, id);
  });
}

function throwsInrun(fn: () => unknown, message: string | RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(error instanceof InrunError, String(error));
    if (typeof message === 'string') assert.equal(error.message, message);
    else assert.match(error.message, message);
    return true;
  });
}

test('lexicalWords: lower-cased runs of Unicode letters and digits, nothing else', () => {
  assert.deepEqual(lexicalWords('The cat sat on the mat.'), ['the', 'cat', 'sat', 'on', 'the', 'mat']);
  // Punctuation, apostrophes, hyphens, underscores and symbols separate words and are dropped.
  assert.deepEqual(lexicalWords("Don't stop—well-known snake_case U.S.A. $5 + 3 = 8 🎉"), [
    'don',
    't',
    'stop',
    'well',
    'known',
    'snake',
    'case',
    'u',
    's',
    'a',
    '5',
    '3',
    '8',
  ]);
  // Digits: a number with a separator is several words; letters and digits together are one.
  assert.deepEqual(lexicalWords('3.14, 1,000 and the 2nd of 1861'), [
    '3',
    '14',
    '1',
    '000',
    'and',
    'the',
    '2nd',
    'of',
    '1861',
  ]);
  // Accents are kept; a decomposed é (e + U+0301) is composed first, so both spellings agree.
  assert.deepEqual(lexicalWords('Café CAFE\u0301 naïve Ærø'), ['café', 'café', 'naïve', 'ærø']);
  // Other scripts: Greek (final Σ → ς) and Cyrillic lower-case; no folding of full-width digits; x² is one word.
  assert.deepEqual(lexicalWords('ΟΔΟΣ Москва １２ x²'), ['οδος', 'москва', '１２', 'x²']);
  // CJK: no word segmentation, so a run of Han/Kana letters is one word; CJK punctuation splits.
  assert.deepEqual(lexicalWords('東京は大きい。北京，上海'), ['東京は大きい', '北京', '上海']);
  // No stemming, no stop words.
  assert.deepEqual(lexicalWords('The cats and THE cat'), ['the', 'cats', 'and', 'the', 'cat']);
  assert.deepEqual(lexicalWords(' ...!? '), []);
  assert.deepEqual(lexicalWords(''), []);
  throwsInrun(() => lexicalWords(42 as unknown as string), 'text must be a string, got 42');
});

test('tfidfRanking: hand-computed smooth-idf TF-IDF cosines', () => {
  // idf(t) = ln((1 + N)/(1 + df)) + 1 with N = 3:
  const i1 = Math.log(4 / 2) + 1; // df = 1 (cat, on, mat, dog, …) = 1.693147…
  const i2 = Math.log(4 / 3) + 1; // df = 2 (the, sat)              = 1.287682…
  // Query "the cat sat": vector (the: 1·i2, cat: 1·i1, sat: 1·i2); ‖q‖² = 2·i2² + i1².
  const q2 = 2 * i2 ** 2 + i1 ** 2;
  // a = (the: 2·i2, cat: i1, sat: i2, on: i1, mat: i1): ‖a‖² = 4i2² + i2² + 3i1² = 5i2² + 3i1²,
  //   q·a = 1·i2·2·i2 + i1·i1 + i2·i2 = 3i2² + i1².
  const cosA = (3 * i2 ** 2 + i1 ** 2) / Math.sqrt((5 * i2 ** 2 + 3 * i1 ** 2) * q2); // 0.767278…
  // b = (the: i2, dog: i1, sat: i2): ‖b‖² = 2i2² + i1² (= ‖q‖²), q·b = 2i2².
  const cosB = (2 * i2 ** 2) / Math.sqrt((2 * i2 ** 2 + i1 ** 2) * q2); // 0.536350…
  // c shares no word: 0.
  // By hand: i1² = 2.866747, i2² = 1.658125; cosA = 7.841122/√(16.890867·6.182997) = 0.76728,
  //   cosB = 3.316250/6.182997 = 0.53635.
  assert.ok(Math.abs(cosA - 0.76728) < 1e-5 && Math.abs(cosB - 0.53635) < 1e-5);
  expectScores(tfidfRanking(DOCS, 'the cat sat'), [
    ['a', cosA],
    ['b', cosB],
    ['c', 0],
  ]);
  // Case and punctuation of the query do not matter.
  expectScores(tfidfRanking(DOCS, 'THE cat, sat!'), [
    ['a', cosA],
    ['b', cosB],
    ['c', 0],
  ]);
  // Query counts are raw tf: "cat cat dogs" = (cat: 2·i1, dogs: i1), ‖q‖ = √5·i1.
  //   a: q·a = 2i1·i1 = 2i1²; c = (cats: i1, and: i1, dogs: i1), ‖c‖ = √3·i1, q·c = i1².
  const cosA2 = (2 * i1 ** 2) / (Math.sqrt(5) * i1 * Math.sqrt(5 * i2 ** 2 + 3 * i1 ** 2));
  const cosC2 = i1 ** 2 / (Math.sqrt(5) * i1 * Math.sqrt(3) * i1); // = 1/√15 = 0.258199…
  close(cosC2, 1 / Math.sqrt(15), 'cosC2');
  const r = tfidfRanking(DOCS, 'cat cat dogs');
  // cosA2 = 2i1/(√5·√(5i2² + 3i1²)) = 3.386294/(2.236068·4.109850) = 0.368480… > cosC2.
  expectScores(r, [
    ['a', cosA2],
    ['c', cosC2],
    ['b', 0],
  ]);
  // A query word no document holds is left out of the query vector (as scikit-learn does):
  // "the zebra" scores like "the": q = (the: i2), cos(q, a) = 2i2·i2/(i2·‖a‖) = 2i2/‖a‖.
  expectScores(tfidfRanking(DOCS, 'the zebra'), [
    ['a', (2 * i2) / Math.sqrt(5 * i2 ** 2 + 3 * i1 ** 2)],
    ['b', i2 / Math.sqrt(2 * i2 ** 2 + i1 ** 2)],
    ['c', 0],
  ]);
  // A document identical to the query (as a bag of words) scores 1.
  close(tfidfRanking(DOCS, 'sat dog the')[0].score, 1, 'identical bag of words');

  // sublinearTf: a count tf weighs 1 + ln tf. Only "the" in a has tf > 1: weight (1 + ln 2)·i2.
  //   ‖a‖² = (1 + ln2)²i2² + i2² + 3i1², q·a = (1 + ln2)i2² + i1² + i2²; b and q are unchanged.
  const s = 1 + Math.log(2);
  const cosAs =
    (s * i2 ** 2 + i1 ** 2 + i2 ** 2) / Math.sqrt((s ** 2 * i2 ** 2 + i2 ** 2 + 3 * i1 ** 2) * q2);
  // By hand (s = 1.693147, s² = 2.866747): numerator 2.807450 + 2.866747 + 1.658125 = 7.332322;
  //   ‖a‖² = 4.753426 + 1.658125 + 8.600241 = 15.011792; cosAs = 7.332322/√(15.011792·6.182997) = 0.761072.
  assert.ok(Math.abs(cosAs - 0.761072) < 1e-5);
  expectScores(tfidfRanking(DOCS, 'the cat sat', { sublinearTf: true }), [
    ['a', cosAs],
    ['b', cosB],
    ['c', 0],
  ]);
  // … and in the query too: "cat cat dogs" = (cat: (1 + ln2)·i1, dogs: i1); c: q·c = i1².
  expectScores(tfidfRanking(DOCS, 'cat cat dogs', { sublinearTf: true }), [
    ['a', (s * i1 * i1) / (Math.sqrt(s ** 2 + 1) * i1 * Math.sqrt(s ** 2 * i2 ** 2 + i2 ** 2 + 3 * i1 ** 2))],
    ['c', i1 ** 2 / (Math.sqrt(s ** 2 + 1) * i1 * Math.sqrt(3) * i1)],
    ['b', 0],
  ]);
});

test('bm25Ranking: hand-computed Okapi BM25 with the non-negative idf', () => {
  // idf(t) = ln(1 + (N − df + 0.5)/(df + 0.5)), N = 3:
  const idf1 = Math.log(1 + 2.5 / 1.5); // df = 1: ln(8/3) = 0.980829…
  const idf2 = Math.log(1 + 1.5 / 2.5); // df = 2: ln(1.6) = 0.470004…
  // avgdl = (6 + 3 + 3)/3 = 4. Defaults k1 = 1.5, b = 0.75:
  //   a (|a| = 6): K_a = 1.5·(1 − 0.75 + 0.75·6/4) = 1.5·1.375 = 2.0625
  //   b (|b| = 3): K_b = 1.5·(1 − 0.75 + 0.75·3/4) = 1.5·0.8125 = 1.21875
  const Ka = 2.0625;
  const Kb = 1.21875;
  // Query "the cat sat":
  //   a: the (tf 2): idf2·2·2.5/(2 + Ka); cat (tf 1): idf1·2.5/(1 + Ka); sat (tf 1): idf2·2.5/(1 + Ka)
  const a = (idf2 * 2 * 2.5) / (2 + Ka) + (idf1 * 2.5) / (1 + Ka) + (idf2 * 2.5) / (1 + Ka); // 1.762820…
  //   b: the (tf 1) + sat (tf 1): 2·idf2·2.5/(1 + Kb)
  const b = (2 * idf2 * 2.5) / (1 + Kb); // 1.059164…
  // By hand: a = 0.470004·1.230769 + 0.980829·0.816327 + 0.470004·0.816327
  //             = 0.578466 + 0.800677 + 0.383677 = 1.762820;  b = 0.940008·1.126761 = 1.059164.
  assert.ok(Math.abs(a - 1.76282) < 1e-5 && Math.abs(b - 1.059164) < 1e-5);
  expectScores(bm25Ranking(DOCS, 'the cat sat'), [
    ['a', a],
    ['b', b],
    ['c', 0],
  ]);
  // Every occurrence of a query word counts: "cat cat" = 2 × the "cat" term of a.
  expectScores(bm25Ranking(DOCS, 'cat cat'), [
    ['a', (2 * idf1 * 2.5) / (1 + Ka)],
    ['b', 0],
    ['c', 0],
  ]);
  // k1 = 0: tf·(0 + 1)/(tf + 0) = 1, so a document scores the sum of idfs of the query words it holds.
  expectScores(bm25Ranking(DOCS, 'the cat sat', { k1: 0 }), [
    ['a', idf2 + idf1 + idf2],
    ['b', idf2 + idf2],
    ['c', 0],
  ]);
  // b = 0: no length normalisation, K = k1 = 1.2 for every document; query "the dogs":
  //   c: dogs (tf 1): idf1·2.2/(1 + 1.2) = idf1 = 0.980829
  //   a: the (tf 2): idf2·2·2.2/(2 + 1.2) = idf2·1.375 = 0.646256
  //   b: the (tf 1): idf2·2.2/(1 + 1.2) = idf2 = 0.470004
  expectScores(bm25Ranking(DOCS, 'the dogs', { k1: 1.2, b: 0 }), [
    ['c', idf1],
    ['a', (idf2 * 2 * 2.2) / (2 + 1.2)],
    ['b', idf2],
  ]);
  // b = 1: full normalisation, K_a = 1.5·6/4 = 2.25, K_c = 1.5·3/4 = 1.125; query "mat and".
  expectScores(bm25Ranking(DOCS, 'mat and', { b: 1 }), [
    ['c', (idf1 * 2.5) / (1 + 1.125)], // 1.153916…
    ['a', (idf1 * 2.5) / (1 + 2.25)], //  0.754484…
    ['b', 0],
  ]);
  // The idf is never negative: a word in every document still adds a little.
  const all = [
    { id: 'x', text: 'red' },
    { id: 'y', text: 'red red' },
  ];
  // N = 2, df = 2: idf = ln(1 + 0.5/2.5) = ln 1.2; avgdl = 1.5.
  //   x: K = 1.5·(0.25 + 0.75/1.5) = 1.125 → ln1.2·2.5/2.125;  y: K = 1.5·(0.25 + 0.75·2/1.5) = 1.875 → ln1.2·5/3.875
  expectScores(bm25Ranking(all, 'red'), [
    ['y', (Math.log(1.2) * 2 * 2.5) / (2 + 1.875)],
    ['x', (Math.log(1.2) * 2.5) / (1 + 1.125)],
  ]);
});

test('ngramOverlapRanking: hand-computed n-gram containment', () => {
  const q = 'The dog sat on the mat';
  // n = 3 (default): query trigrams {the dog sat, dog sat on, sat on the, on the mat} (4).
  //   a holds "sat on the", "on the mat" → 2/4; b holds "the dog sat" → 1/4; c none.
  expectScores(ngramOverlapRanking(DOCS, q), [
    ['a', 2 / 4],
    ['b', 1 / 4],
    ['c', 0],
  ]);
  // n = 2: {the dog, dog sat, sat on, on the, the mat} (5); a: sat on, on the, the mat → 3/5;
  //   b: the dog, dog sat → 2/5.
  expectScores(ngramOverlapRanking(DOCS, q, 2), [
    ['a', 3 / 5],
    ['b', 2 / 5],
    ['c', 0],
  ]);
  // n = 1: distinct words {the, dog, sat, on, mat} (5; "the" twice counts once); a: the, sat, on,
  //   mat → 4/5; b: the, dog, sat → 3/5.
  expectScores(ngramOverlapRanking(DOCS, q, 1), [
    ['a', 4 / 5],
    ['b', 3 / 5],
    ['c', 0],
  ]);
  // n = 6: the query's one 6-gram is in no document; a has 6 words, b and c fewer than 6.
  expectScores(ngramOverlapRanking(DOCS, q, 6), [
    ['a', 0],
    ['b', 0],
    ['c', 0],
  ]);
  expectScores(ngramOverlapRanking(DOCS, 'the cat sat on the mat', 6), [
    ['a', 1],
    ['b', 0],
    ['c', 0],
  ]);
  // A set, not a multiset: "the cat the cat" has bigrams {the cat, cat the} (2); a holds "the cat"
  //   → 1/2 (a multiset would give 2/3).
  expectScores(ngramOverlapRanking(DOCS, 'the cat the cat', 2), [
    ['a', 1 / 2],
    ['b', 0],
    ['c', 0],
  ]);
  // Unknown words count in the denominator: "the dog barked" (n = 2): {the dog, dog barked};
  //   b holds "the dog" → 1/2.
  expectScores(ngramOverlapRanking(DOCS, 'the dog barked', 2), [
    ['b', 1 / 2],
    ['a', 0],
    ['c', 0],
  ]);
  // n-grams do not cross documents: "mat the" (end of a, start of b) is nowhere.
  assert.equal(ngramOverlapRanking(DOCS, 'mat the', 2)[0].score, 0);
  // Repeated occurrences in a document count once: "the" twice in a.
  assert.equal(ngramOverlapRanking(DOCS, 'the', 1)[0].score, 1);
});

test('rankings: rank 1 is the best, ties keep document order, top keeps the first ones', () => {
  const docs = [
    { id: 'x', text: 'red blue' },
    { id: 'y', text: 'blue red' },
    { id: 'z', text: 'green' },
    { id: 'w', text: '' }, // a document with no words is allowed and scores 0 everywhere
  ];
  for (const rank of [
    (d: typeof docs) => tfidfRanking(d, 'red'),
    (d: typeof docs) => bm25Ranking(d, 'red'),
    (d: typeof docs) => ngramOverlapRanking(d, 'red', 1),
  ]) {
    const forward = rank(docs);
    assert.deepEqual(
      forward.map((r) => [r.id, r.rank]),
      [
        ['x', 1],
        ['y', 2],
        ['z', 3],
        ['w', 4],
      ],
    );
    assert.equal(forward[0].score, forward[1].score);
    assert.ok(forward[0].score > 0);
    assert.equal(forward[2].score, 0);
    assert.equal(forward[3].score, 0);
    // Reversed input: the tie (and the zeros) come out in the new document order.
    const backward = rank([...docs].reverse());
    assert.deepEqual(
      backward.map((r) => r.id),
      ['y', 'x', 'w', 'z'],
    );
  }
  // A query no document shares a word with is not an error: every score is 0, document order.
  assert.deepEqual(
    tfidfRanking(docs, 'purple').map((r) => [r.id, r.score]),
    [
      ['x', 0],
      ['y', 0],
      ['z', 0],
      ['w', 0],
    ],
  );
  assert.deepEqual(
    bm25Ranking(DOCS, 'the cat sat', { top: 2 }).map((r) => r.id),
    ['a', 'b'],
  );
  assert.deepEqual(
    tfidfRanking(DOCS, 'the cat sat', { top: 10 }).map((r) => r.rank),
    [1, 2, 3],
  );
  assert.deepEqual(
    ngramOverlapRanking(DOCS, 'the dog sat on the mat', 3, { top: 1 }).map((r) => r.id),
    ['a'],
  );
});

test('LexicalIndex: built once, queried many times, same answers as the one-shot functions', () => {
  const index = new LexicalIndex(DOCS);
  assert.equal(index.size, 3);
  assert.deepEqual(index.ids, ['a', 'b', 'c']);
  assert.equal(index.vocabularySize, 9); // the cat sat on mat dog cats and dogs
  assert.equal(index.averageLength, 4);
  for (const query of ['the cat sat', 'dogs and cats', 'the dog sat on the mat', 'mat']) {
    assert.deepEqual(index.tfidf(query), tfidfRanking(DOCS, query));
    assert.deepEqual(index.bm25(query, { k1: 1.2 }), bm25Ranking(DOCS, query, { k1: 1.2 }));
    assert.deepEqual(index.ngramOverlap(query, 1), ngramOverlapRanking(DOCS, query, 1));
  }
  // Documents may carry other fields (a TextDocument does); only id and text are read.
  const rich = DOCS.map((d) => ({ ...d, source: 's', title: d.id.toUpperCase() }));
  assert.deepEqual(tfidfRanking(rich, 'cat'), tfidfRanking(DOCS, 'cat'));
});

test('errors: bad documents, options and queries', () => {
  const prefix = 'lexical index: ';
  throwsInrun(() => tfidfRanking([], 'x'), `${prefix}no documents (give at least one { id, text })`);
  throwsInrun(
    () => tfidfRanking('abc' as never, 'x'),
    `${prefix}documents must be an array of { id, text }, got "abc"`,
  );
  throwsInrun(
    () =>
      bm25Ranking(
        [
          { id: 'a', text: 'x' },
          { id: 'b', text: 'y' },
          { id: 'a', text: 'z' },
        ],
        'x',
      ),
    `${prefix}duplicate document id "a" (documents 0 and 2)`,
  );
  throwsInrun(
    () => new LexicalIndex([{ id: 'a', text: 'x' }, { id: 'b', text: 42 } as never]),
    `${prefix}document 1 ("b"): text must be a string, got 42`,
  );
  throwsInrun(
    () => new LexicalIndex([{ id: 'a', text: null } as never]),
    `${prefix}document 0 ("a"): text must be a string, got null`,
  );
  throwsInrun(
    () => new LexicalIndex([{ id: 7, text: 'x' } as never]),
    `${prefix}document 0: id must be a string, got 7`,
  );
  throwsInrun(
    () => new LexicalIndex([null as never]),
    `${prefix}document 0 must be an object { id, text }, got null`,
  );

  const index = new LexicalIndex(DOCS);
  throwsInrun(() => index.ngramOverlap('the cat', 0), 'n-gram overlap: n must be ≥ 1, got 0');
  throwsInrun(() => ngramOverlapRanking(DOCS, 'the cat', -2), 'n-gram overlap: n must be ≥ 1, got -2');
  throwsInrun(() => index.ngramOverlap('the cat', 1.5), 'n-gram overlap: n must be an integer, got 1.5');
  throwsInrun(
    () => index.ngramOverlap('the cat'),
    'n-gram overlap: the query has 2 words, fewer than n = 3, so it has no word 3-gram',
  );
  throwsInrun(
    () => index.ngramOverlap('cat!', 2),
    'n-gram overlap: the query has 1 word, fewer than n = 2, so it has no word 2-gram',
  );
  throwsInrun(() => index.bm25('cat', { k1: -0.1 }), 'BM25 k1 must be ≥ 0, got -0.1');
  throwsInrun(() => bm25Ranking(DOCS, 'cat', { b: 1.5 }), 'BM25 b must be in [0, 1], got 1.5');
  throwsInrun(() => index.bm25('cat', { b: -0.25 }), 'BM25 b must be in [0, 1], got -0.25');
  throwsInrun(() => index.bm25('cat', { k1: Number.NaN }), 'BM25 k1 must be a finite number, got NaN');
  throwsInrun(() => index.bm25('cat', { k: 1 } as never), 'BM25: unknown option "k" (known: k1, b, top)');
  throwsInrun(() => index.tfidf('cat', { top: 0 }), 'TF-IDF: top must be ≥ 1, got 0');
  throwsInrun(
    () => index.tfidf('cat', { sublinearTf: 'yes' } as never),
    'TF-IDF: sublinearTf must be true or false, got "yes"',
  );
  const noWords = (what: string, q: string) =>
    `${what}: the query ${JSON.stringify(q)} has no words (a word is a run of Unicode letters or digits), so every document would score 0`;
  throwsInrun(() => tfidfRanking(DOCS, ' -- !? '), noWords('TF-IDF', ' -- !? '));
  throwsInrun(() => index.bm25(''), noWords('BM25', ''));
  throwsInrun(() => index.ngramOverlap('🎉', 1), noWords('n-gram overlap', '🎉'));
  throwsInrun(() => index.tfidf(3 as never), 'TF-IDF: the query must be a string, got 3');
  throwsInrun(() => index.tfidf('.'.repeat(100)), /the query "\.{60}…" has no words/);
});

test('bundled speeches: a verbatim passage ranks its own speech first under all three', () => {
  const docs = loadBundledCorpus('speeches');
  assert.equal(docs.length, 233);
  const index = new LexicalIndex(docs);
  // 250 whitespace-separated tokens from the middle of each of five addresses, 1790–2021, cut out
  // of the text as written (punctuation, line breaks and all).
  const passageOf = (id: string) => {
    const doc = docs.find((d) => d.id === id)!;
    const tokens = [...doc.text.matchAll(/\S+/g)];
    const from = Math.floor((tokens.length - 250) / 2);
    const last = tokens[from + 249];
    return doc.text.slice(tokens[from].index, last.index + last[0].length);
  };
  const rankOf = (ranking: LexicalScore[], id: string) => ranking.find((r) => r.id === id)!.rank;
  for (const id of [
    'speeches/1790-george-washington',
    'speeches/1861-abraham-lincoln',
    'speeches/1910-william-h-taft',
    'speeches/1961-john-f-kennedy',
    'speeches/2021-joseph-r-biden',
  ]) {
    const passage = passageOf(id);
    assert.equal(index.bm25(passage)[0].id, id, `${id}: BM25`);
    const ngram = index.ngramOverlap(passage);
    assert.equal(ngram[0].id, id, `${id}: trigram containment`);
    assert.equal(ngram[0].score, 1, `${id}: every trigram of the passage is in its speech`);
    assert.equal(index.tfidf(passage, { sublinearTf: true })[0].id, id, `${id}: TF-IDF, sublinear tf`);
  }
  // TF-IDF with raw counts (scikit-learn's default) also finds these three…
  for (const id of [
    'speeches/1790-george-washington',
    'speeches/1961-john-f-kennedy',
    'speeches/2021-joseph-r-biden',
  ])
    assert.equal(index.tfidf(passageOf(id))[0].id, id, `${id}: TF-IDF`);
  // …but not these two, whose long speeches' raw-count vectors are dominated by frequent words (a
  // known weakness of raw-count cosine, kept because it is the scikit-learn definition; the
  // Lincoln passage is a paragraph of Post Office figures): the own speech is still near the top.
  const lincoln = rankOf(
    index.tfidf(passageOf('speeches/1861-abraham-lincoln')),
    'speeches/1861-abraham-lincoln',
  );
  const taft = rankOf(index.tfidf(passageOf('speeches/1910-william-h-taft')), 'speeches/1910-william-h-taft');
  assert.deepEqual([lincoln, taft], [17, 55]);
  // The one-shot function gives the same ranking as the index.
  const kennedy = passageOf('speeches/1961-john-f-kennedy');
  assert.deepEqual(tfidfRanking(docs, kennedy, { top: 5 }), index.tfidf(kennedy, { top: 5 }));
});
