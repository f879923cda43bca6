/**
 * Tokenizers that turn text into the integer ids a language model trains on.
 *
 * - `gpt2`: GPT-2's byte-level BPE (the "r50k_base" encoding: 50,257 ids, end-of-text = 50256),
 *   from the npm package `gpt-tokenizer`, whose merge table ships inside the package: nothing is
 *   downloaded, at install or at run time. The table (~0.6 MB of JavaScript) is loaded the first
 *   time the tokenizer is asked for.
 * - `bytes`: one id per UTF-8 byte (0–255) plus an end-of-text id 256 (vocabSize 257). Needs no
 *   data at all and round-trips every string exactly; sequences are ~4× longer than with `gpt2`.
 *
 * Both encode text as plain text: a literal "<|endoftext|>" in a document is ordinary characters,
 * never the end-of-text id (which only {@link splitIntoSequences} inserts, between documents).
 *
 * Invalid input: a string is already UTF-16, so invalid UTF-8 can only be caught where a file's
 * bytes are decoded — use {@link decodeUtf8Strict} / `readUtf8FileStrict` there. The one defect a
 * string itself can have, an unpaired surrogate, makes `encode` throw InrunError with its index
 * (encoding it would silently change it to U+FFFD).
 */
import { createRequire } from 'node:module';
import { fail } from '../util/errors.js';
import { checkWellFormed } from './utf8.js';

export { decodeUtf8Strict } from './utf8.js';
export { readUtf8FileStrict } from './utf8-file.js';

export interface Tokenizer {
  /** Name as accepted by {@link getTokenizer}. */
  readonly name: string;
  /** Ids are integers in [0, vocabSize). */
  readonly vocabSize: number;
  /** Encodes text (plain text: special-token strings are not special). Throws on unpaired surrogates. */
  encode(text: string): Int32Array;
  /**
   * Decodes ids back to text; throws InrunError on an id outside [0, vocabSize) (e.g. the −1 of
   * padded targets). Bytes that do not form valid UTF-8 (an id sequence cut inside a character)
   * decode to U+FFFD; the end-of-text id decodes to "<|endoftext|>".
   */
  decode(ids: ArrayLike<number>): string;
  /** Id that marks the end of a document, if the tokenizer has one. */
  readonly eotToken?: number;
}

export const TOKENIZER_NAMES = ['gpt2', 'bytes'] as const;
export type TokenizerName = (typeof TOKENIZER_NAMES)[number];

export const END_OF_TEXT = '<|endoftext|>';

/** The tokenizer of that name (instances are shared: tokenizers are stateless). */
export function getTokenizer(name: TokenizerName): Tokenizer;
export function getTokenizer(name: string): Tokenizer;
export function getTokenizer(name: string): Tokenizer {
  switch (name) {
    case 'gpt2':
      return gpt2Tokenizer();
    case 'bytes':
      return byteTokenizer();
    default:
      fail(`unknown tokenizer ${JSON.stringify(name)} (known: ${TOKENIZER_NAMES.join(', ')})`);
  }
}

const utf8Encoder = new TextEncoder();
const lenientDecoder = new TextDecoder('utf-8', { ignoreBOM: true });
const END_OF_TEXT_BYTES = utf8Encoder.encode(END_OF_TEXT);

function checkId(tokenizer: string, ids: ArrayLike<number>, i: number, vocabSize: number): number {
  const id = ids[i];
  if (!Number.isInteger(id) || id < 0 || id >= vocabSize)
    fail(
      `${tokenizer} tokenizer: cannot decode id ${id} at position ${i} (ids are integers in [0, ${vocabSize}))`,
    );
  return id;
}

// ---------------------------------------------------------------------------------------------
// bytes

const BYTE_EOT = 256;

class ByteTokenizer implements Tokenizer {
  readonly name = 'bytes';
  readonly vocabSize = 257;
  readonly eotToken = BYTE_EOT;

  encode(text: string): Int32Array {
    checkWellFormed(text, 'bytes tokenizer');
    return Int32Array.from(utf8Encoder.encode(text));
  }

  decode(ids: ArrayLike<number>): string {
    const bytes: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      const id = checkId(this.name, ids, i, this.vocabSize);
      if (id === BYTE_EOT) for (const b of END_OF_TEXT_BYTES) bytes.push(b);
      else bytes.push(id);
    }
    return lenientDecoder.decode(Uint8Array.from(bytes));
  }
}

let byteInstance: ByteTokenizer | undefined;

/** Byte-level tokenizer: ids 0–255 are UTF-8 bytes, 256 is end-of-text. */
export function byteTokenizer(): Tokenizer {
  byteInstance ??= new ByteTokenizer();
  return byteInstance;
}

// ---------------------------------------------------------------------------------------------
// gpt2

type R50kModule = typeof import('gpt-tokenizer/encoding/r50k_base');
type RanksModule = typeof import('gpt-tokenizer/bpeRanks/r50k_base');

const GPT2_EOT = 50256;
const NOT_SPECIAL = { allowedSpecial: new Set<string>(), disallowedSpecial: new Set<string>() };

class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2';
  readonly vocabSize: number;
  readonly eotToken = GPT2_EOT;
  /** UTF-8 bytes of each id, built on the first decode. */
  private tokenBytes: Uint8Array[] | undefined;

  constructor(
    private readonly encoding: R50kModule,
    private readonly require: NodeJS.Require,
  ) {
    this.vocabSize = encoding.vocabularySize;
    if (this.vocabSize !== GPT2_EOT + 1)
      fail(`gpt-tokenizer's r50k_base has ${this.vocabSize} ids, expected ${GPT2_EOT + 1}`);
  }

  encode(text: string): Int32Array {
    checkWellFormed(text, 'gpt2 tokenizer');
    return Int32Array.from(this.encoding.encode(text, NOT_SPECIAL));
  }

  // The package's own decode buffers bytes across ids and mangles sequences cut inside a
  // character, so ids are turned into bytes here, from the package's table, and decoded at once.
  decode(ids: ArrayLike<number>): string {
    const table = this.bytesOfIds();
    const parts: Uint8Array[] = [];
    let length = 0;
    for (let i = 0; i < ids.length; i++) {
      const bytes = table[checkId(this.name, ids, i, this.vocabSize)];
      parts.push(bytes);
      length += bytes.length;
    }
    const all = new Uint8Array(length);
    let at = 0;
    for (const part of parts) {
      all.set(part, at);
      at += part.length;
    }
    return lenientDecoder.decode(all);
  }

  private bytesOfIds(): Uint8Array[] {
    if (this.tokenBytes) return this.tokenBytes;
    const ranks = (this.require('gpt-tokenizer/bpeRanks/r50k_base') as RanksModule).default;
    if (ranks.length !== GPT2_EOT) fail(`gpt-tokenizer's r50k_base table has ${ranks.length} entries`);
    const table = ranks.map((entry) =>
      typeof entry === 'string' ? utf8Encoder.encode(entry) : Uint8Array.from(entry),
    );
    table.push(END_OF_TEXT_BYTES);
    this.tokenBytes = table;
    return table;
  }
}

let gpt2Instance: Gpt2Tokenizer | undefined;

/** GPT-2's BPE tokenizer (r50k_base); needs the npm package `gpt-tokenizer`. */
export function gpt2Tokenizer(): Tokenizer {
  if (gpt2Instance) return gpt2Instance;
  const require = createRequire(import.meta.url);
  let encoding: R50kModule;
  try {
    encoding = require('gpt-tokenizer/encoding/r50k_base') as R50kModule;
  } catch (error) {
    fail(
      `the gpt2 tokenizer needs the npm package "gpt-tokenizer" (npm i gpt-tokenizer): ${(error as Error).message}`,
    );
  }
  gpt2Instance = new Gpt2Tokenizer(encoding, require);
  return gpt2Instance;
}
