import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BUNDLED_CORPUS_NAMES, listBundledCorpora, loadBundledCorpus, slug } from '../../src/text/corpora.js';
import { splitIntoSequences } from '../../src/text/sequences.js';
import { getTokenizer } from '../../src/text/tokenizer.js';
import { findUnpairedSurrogate } from '../../src/text/utf8.js';
import { InrunError } from '../../src/util/errors.js';

/** What each corpus must hold: document count, total characters (lower bound), known ids. */
const EXPECTED = {
  speeches: {
    documents: 233,
    minChars: 10_000_000,
    ids: ['speeches/1790-george-washington', 'speeches/1861-abraham-lincoln', 'speeches/1961-john-f-kennedy'],
    first: 'speeches/1790-george-washington',
    last: 'speeches/2021-joseph-r-biden',
  },
  'moby-dick': {
    documents: 138,
    minChars: 1_150_000,
    ids: ['moby-dick/etymology', 'moby-dick/chapter-001', 'moby-dick/chapter-135', 'moby-dick/epilogue'],
    first: 'moby-dick/etymology',
    last: 'moby-dick/epilogue',
  },
  kjv: {
    documents: 1189,
    minChars: 4_000_000,
    ids: ['kjv/genesis-001', 'kjv/psalms-150', 'kjv/1-samuel-017', 'kjv/solomons-song-001'],
    first: 'kjv/genesis-001',
    last: 'kjv/revelation-022',
  },
} as const;

test('listBundledCorpora: at least three distinct sources, each described', () => {
  const list = listBundledCorpora();
  assert.deepEqual(
    list.map((c) => c.name),
    ['speeches', 'moby-dick', 'kjv'],
  );
  assert.deepEqual(BUNDLED_CORPUS_NAMES, ['speeches', 'moby-dick', 'kjv']);
  for (const c of list) {
    assert.ok(c.title && c.document && c.packageName && c.license, c.name);
    assert.match(c.license, /public domain/i);
  }
});

for (const name of BUNDLED_CORPUS_NAMES) {
  test(`loadBundledCorpus(${name}): non-empty documents, unique stable ids, expected size`, () => {
    const expected = EXPECTED[name];
    const docs = loadBundledCorpus(name);
    assert.equal(docs.length, expected.documents);
    assert.equal(docs[0].id, expected.first);
    assert.equal(docs.at(-1)!.id, expected.last);
    const ids = new Set(docs.map((d) => d.id));
    assert.equal(ids.size, docs.length, 'ids unique');
    for (const id of expected.ids) assert.ok(ids.has(id), id);
    let chars = 0;
    for (const doc of docs) {
      assert.ok(doc.id.startsWith(`${name}/`), doc.id);
      assert.match(doc.id, /^[a-z-]+\/[a-z0-9-]+$/, 'ids are lower-case slugs');
      assert.equal(doc.source, name);
      assert.ok(doc.title && doc.title.length > 0, `${doc.id} has a title`);
      assert.ok(doc.text.trim().length >= 100, `${doc.id} has text (${doc.text.length} chars)`);
      assert.equal(findUnpairedSurrogate(doc.text), -1);
      assert.ok(!doc.text.includes('\ufffd'), `${doc.id} has no replacement characters`);
      chars += doc.text.length;
    }
    assert.ok(chars >= expected.minChars, `${chars} characters`);
    assert.notEqual(loadBundledCorpus(name), docs, 'a fresh array each call');
  });
}

test('loadBundledCorpus: texts are the expected ones, markup removed', () => {
  const speeches = loadBundledCorpus('speeches');
  const lincoln = speeches.find((d) => d.id === 'speeches/1861-abraham-lincoln')!;
  assert.equal(lincoln.title, 'Abraham Lincoln, 1861 (Republican)');
  assert.match(lincoln.text, /^Fellow-Citizens of the Senate and House of Representatives:/);

  const moby = loadBundledCorpus('moby-dick');
  const loomings = moby.find((d) => d.id === 'moby-dick/chapter-001')!;
  assert.equal(loomings.title, 'CHAPTER 1. Loomings.');
  assert.match(loomings.text, /Call me Ishmael\. Some years ago—never mind how long precisely—/);

  const kjv = loadBundledCorpus('kjv');
  const genesis = kjv[0];
  assert.equal(genesis.title, 'Genesis 1');
  assert.match(
    genesis.text,
    /^In the beginning God created the heaven and the earth\. And the earth was without form/,
  );
  const psalm = kjv.find((d) => d.id === 'kjv/psalms-023')!;
  assert.match(psalm.text, /^The LORD is my shepherd; I shall not want\./);
  for (const doc of kjv) {
    assert.ok(!/[[\]#]/.test(doc.text), `${doc.id}: no [italics] or # paragraph markers`);
  }
});

test('loadBundledCorpus: an unknown name is an InrunError naming it and the known ones', () => {
  assert.throws(
    () => loadBundledCorpus('enron'),
    (e: Error) => e instanceof InrunError && e.message.includes('"enron"') && e.message.includes('moby-dick'),
  );
  assert.throws(() => loadBundledCorpus('toString'), InrunError);
});

test('slug: readable ASCII ids', () => {
  assert.equal(slug('John F. Kennedy'), 'john-f-kennedy');
  assert.equal(slug('Song of Solomon'), 'song-of-solomon');
  assert.equal(slug("Solomon's Song"), 'solomons-song');
  assert.equal(slug('1 Samuel'), '1-samuel');
  assert.equal(slug('  Émile  Zola! '), 'emile-zola');
});

test('bundled corpora split into sequences end to end (gpt2 and bytes)', () => {
  const docs = loadBundledCorpus('moby-dick').slice(0, 5);
  for (const tokenizer of [getTokenizer('gpt2'), getTokenizer('bytes')]) {
    const { sequences, skipped, documentCount } = splitIntoSequences(docs, tokenizer, { context: 128 });
    assert.equal(skipped.length, 0);
    assert.equal(documentCount, 5);
    assert.equal(sequences[0].id, 'moby-dick/etymology#0');
    assert.ok(sequences.every((s) => s.inputs.length === 128 && s.source === 'moby-dick'));
    const chapter = sequences.filter((s) => s.documentId === 'moby-dick/chapter-001');
    const text = tokenizer.decode(chapter.flatMap((s) => Array.from(s.inputs.subarray(0, s.length))));
    assert.equal(text, docs[2].text, `${tokenizer.name}: sequences decode back to the chapter`);
  }
});
