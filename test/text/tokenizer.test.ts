import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  decodeUtf8Strict,
  END_OF_TEXT,
  getTokenizer,
  readUtf8FileStrict,
  TOKENIZER_NAMES,
} from '../../src/text/tokenizer.js';
import { findUnpairedSurrogate, firstInvalidUtf8Offset } from '../../src/text/utf8.js';
import { InrunError } from '../../src/util/errors.js';
import { Rng } from '../../src/util/rng.js';

const SAMPLES = [
  '',
  'Hello world',
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money…',
  '  leading and trailing spaces\n\n\ttabs\r\nCRLF  ',
  'emoji: 😀👍🏽 👨‍👩‍👧‍👦 flags 🇺🇸🇯🇵',
  'CJK: 漢字かなカナ 한국어, Cyrillic: Привет, Greek: Ωμέγα, Arabic: مرحبا',
  'combining: e\u0301 vs é, zero-width joiner \u200d, BOM-like \ufeff in the middle',
  `a literal ${END_OF_TEXT} in the text is just text`,
  '\ufeffa leading byte-order mark is kept',
  '\u0000 control \u0001 and del \u007f',
  '𝔘𝔫𝔦𝔠𝔬𝔡𝔢 astral 𐍈 and U+10FFFF \u{10ffff}',
];

for (const name of TOKENIZER_NAMES) {
  test(`${name} tokenizer: encode then decode round-trips every sample exactly`, () => {
    const tokenizer = getTokenizer(name);
    assert.equal(tokenizer.name, name);
    for (const text of SAMPLES) {
      const ids = tokenizer.encode(text);
      assert.ok(ids instanceof Int32Array);
      for (const id of ids) assert.ok(id >= 0 && id < tokenizer.vocabSize, `id ${id} in range`);
      assert.equal(tokenizer.decode(ids), text, JSON.stringify(text));
      assert.equal(tokenizer.decode(Array.from(ids)), text, 'plain arrays decode too');
    }
  });

  test(`${name} tokenizer: round-trips random well-formed Unicode`, () => {
    const tokenizer = getTokenizer(name);
    const rng = new Rng(7);
    for (let trial = 0; trial < 200; trial++) {
      const codePoints: number[] = [];
      const length = rng.int(40);
      for (let i = 0; i < length; i++) {
        const kind = rng.uniform();
        let cp: number;
        if (kind < 0.5) cp = 0x20 + rng.int(0x5f);
        else if (kind < 0.8) cp = rng.int(0xd800);
        else cp = 0xe000 + rng.int(0x110000 - 0xe000);
        codePoints.push(cp);
      }
      const text = String.fromCodePoint(...codePoints);
      assert.equal(tokenizer.decode(tokenizer.encode(text)), text);
    }
  });

  test(`${name} tokenizer: special-token text is plain text; eot decodes to the marker`, () => {
    const tokenizer = getTokenizer(name);
    const eot = tokenizer.eotToken;
    assert.ok(eot !== undefined);
    assert.equal(eot, tokenizer.vocabSize - 1);
    assert.ok(!tokenizer.encode(`x${END_OF_TEXT}y`).includes(eot));
    assert.equal(tokenizer.decode([...tokenizer.encode('end.'), eot]), `end.${END_OF_TEXT}`);
  });

  test(`${name} tokenizer: rejects unpaired surrogates and out-of-range ids`, () => {
    const tokenizer = getTokenizer(name);
    assert.throws(
      () => tokenizer.encode('ab\ud800cd'),
      (e: Error) => {
        assert.ok(e instanceof InrunError);
        assert.match(e.message, /unpaired UTF-16 surrogate U\+D800 at index 2/);
        return true;
      },
    );
    assert.throws(() => tokenizer.encode('\udc00'), /at index 0/);
    for (const bad of [-1, tokenizer.vocabSize, 1.5, Number.NaN]) {
      assert.throws(
        () => tokenizer.decode([0, bad]),
        (e: Error) => e instanceof InrunError && e.message.includes(`id ${bad} at position 1`),
      );
    }
  });
}

test('gpt2 tokenizer: matches the known GPT-2 ids', () => {
  const gpt2 = getTokenizer('gpt2');
  assert.equal(gpt2.vocabSize, 50257);
  assert.equal(gpt2.eotToken, 50256);
  assert.deepEqual(Array.from(gpt2.encode('Hello world')), [15496, 995]);
  assert.deepEqual(Array.from(gpt2.encode(' the')), [262]);
  assert.deepEqual(Array.from(gpt2.encode(END_OF_TEXT)), [27, 91, 437, 1659, 5239, 91, 29]);
  assert.equal(getTokenizer('gpt2'), gpt2, 'shared instance');
});

test('gpt2 tokenizer: ids cut inside a character decode to U+FFFD, not garbage', () => {
  const gpt2 = getTokenizer('gpt2');
  const text = 'héllo 😀 漢字';
  const ids = gpt2.encode(text);
  let cutInside = 0;
  for (let cut = 0; cut <= ids.length; cut++) {
    // A prefix of the ids decodes to a prefix of the text, plus U+FFFD for a character it cuts.
    const head = gpt2.decode(ids.subarray(0, cut));
    const whole = head.replace(/\ufffd+$/, '');
    assert.ok(text.startsWith(whole), `cut ${cut}: ${JSON.stringify(head)}`);
    assert.ok(!whole.includes('\ufffd'));
    if (whole !== head) cutInside++;
  }
  assert.ok(cutInside > 0, 'some cut falls inside a character');
  assert.equal(gpt2.decode([447]), '\ufffd', 'a lone partial byte token');
});

test('bytes tokenizer: one id per UTF-8 byte for emoji and CJK, vocab 257', () => {
  const bytes = getTokenizer('bytes');
  assert.equal(bytes.vocabSize, 257);
  assert.equal(bytes.eotToken, 256);
  assert.deepEqual(Array.from(bytes.encode('A')), [65]);
  assert.deepEqual(Array.from(bytes.encode('é')), [0xc3, 0xa9]);
  assert.deepEqual(Array.from(bytes.encode('漢')), [0xe6, 0xbc, 0xa2]);
  assert.deepEqual(Array.from(bytes.encode('😀')), [0xf0, 0x9f, 0x98, 0x80]);
  const mixed = '😀漢字👍🏽';
  assert.equal(bytes.encode(mixed).length, new TextEncoder().encode(mixed).length);
  assert.equal(bytes.decode(bytes.encode(mixed)), mixed);
  assert.equal(bytes.decode([0xe6, 0xbc]), '\ufffd', 'a cut character decodes to U+FFFD');
});

test('getTokenizer: an unknown name is an InrunError naming it', () => {
  assert.throws(
    () => getTokenizer('gpt-5'),
    (e: Error) =>
      e instanceof InrunError && e.message.includes('"gpt-5"') && e.message.includes('gpt2, bytes'),
  );
});

test('decodeUtf8Strict: decodes valid UTF-8 and drops a leading BOM', () => {
  const text = 'plain, é, 漢字, 😀\n';
  assert.equal(decodeUtf8Strict(new TextEncoder().encode(text), 'x'), text);
  assert.equal(decodeUtf8Strict(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), 'x'), 'a');
  assert.equal(decodeUtf8Strict(new Uint8Array(), 'x'), '');
});

test('decodeUtf8Strict: names where, byte offset and line of the first invalid sequence', () => {
  const cases: [number[], number, number][] = [
    [[0x61, 0x62, 0xff, 0x63], 2, 1], // byte that never starts a sequence
    [[0x61, 0x0a, 0x0a, 0x80], 3, 3], // lone continuation byte, third line
    [[0x61, 0xe2, 0x28, 0xa1], 1, 1], // lead byte followed by a non-continuation
    [[0x61, 0x62, 0xe2, 0x82], 2, 1], // sequence cut by the end of the input
    [[0xc0, 0xaf], 0, 1], // overlong '/'
    [[0xe0, 0x80, 0xaf], 0, 1], // overlong, three bytes
    [[0x61, 0xed, 0xa0, 0x80], 1, 1], // encoded surrogate U+D800
    [[0xf4, 0x90, 0x80, 0x80], 0, 1], // above U+10FFFF
    [[0xe2, 0x82, 0xac, 0x0a, 0xf0, 0x9f, 0x98], 4, 2], // valid € then a cut emoji
  ];
  for (const [bytes, offset, line] of cases) {
    const input = Uint8Array.from(bytes);
    assert.equal(firstInvalidUtf8Offset(input), offset, bytes.join(','));
    assert.throws(
      () => decodeUtf8Strict(input, 'data/notes.txt'),
      (e: Error) => {
        assert.ok(e instanceof InrunError, 'InrunError');
        assert.match(e.message, /^data\/notes\.txt: not valid UTF-8/);
        assert.ok(e.message.includes(`byte offset ${offset} (line ${line})`), e.message);
        return true;
      },
    );
  }
});

test('firstInvalidUtf8Offset agrees with TextDecoder on random bytes', () => {
  const fatal = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const valid = (bytes: Uint8Array) => {
    try {
      fatal.decode(bytes);
      return true;
    } catch {
      return false;
    }
  };
  const rng = new Rng(11);
  const interesting = [
    0x00, 0x41, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff,
  ];
  let invalid = 0;
  for (let trial = 0; trial < 5000; trial++) {
    const bytes = new Uint8Array(1 + rng.int(8));
    for (let i = 0; i < bytes.length; i++) {
      bytes[i] = rng.uniform() < 0.5 ? interesting[rng.int(interesting.length)] : 0x80 + rng.int(0x40);
    }
    const offset = firstInvalidUtf8Offset(bytes);
    assert.equal(offset < 0, valid(bytes), Array.from(bytes).join(','));
    if (offset >= 0) {
      invalid++;
      assert.ok(valid(bytes.subarray(0, offset)), 'everything before the offset is valid');
      assert.ok(!valid(bytes.subarray(0, offset + 1)), 'the sequence at the offset is not');
    }
  }
  assert.ok(invalid > 1000 && invalid < 5000, `a mix of valid and invalid inputs (${invalid} invalid)`);
});

test('readUtf8FileStrict: reads a file, and names it when it is not UTF-8', () => {
  const dir = mkdtempSync(join(tmpdir(), 'inrun-utf8-'));
  try {
    const good = join(dir, 'good.txt');
    const bad = join(dir, 'bad.txt');
    writeFileSync(good, 'fine 😀\n');
    writeFileSync(bad, Buffer.from([0x6f, 0x6b, 0x0a, 0x63, 0x61, 0x66, 0xe9, 0x0a])); // "café" in Latin-1
    assert.equal(readUtf8FileStrict(good), 'fine 😀\n');
    assert.throws(
      () => readUtf8FileStrict(bad),
      (e: Error) =>
        e instanceof InrunError && e.message.includes(bad) && e.message.includes('offset 6 (line 2)'),
    );
    assert.throws(() => readUtf8FileStrict(join(dir, 'missing.txt')), InrunError);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('findUnpairedSurrogate: pairs are fine, lone halves are found', () => {
  assert.equal(findUnpairedSurrogate('😀 ok'), -1);
  assert.equal(findUnpairedSurrogate('ok \ud83d'), 3);
  assert.equal(findUnpairedSurrogate('\ude00😀'), 0);
  assert.equal(findUnpairedSurrogate('😀\ude00'), 2);
});
