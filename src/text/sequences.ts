/**
 * Documents → fixed-length next-token training sequences, each traceable to its document.
 *
 * A document's text is tokenized (with the end-of-text id appended by default) into ids
 * t[0..n-1]. Sequence k covers the window starting at token s = k·stride:
 *
 *   tokens  = t[s .. s+L]          (L+1 ids, L = min(context, n-1-s) ≥ 1)
 *   inputs  = t[s .. s+L-1]        then padding up to `context`
 *   targets = t[s+1 .. s+L]        then −1 (IGNORE_INDEX: no loss, no gradient) up to `context`
 *
 * so every sequence is an (input, target) pair of exactly `context` positions and only the last
 * one of a document can be short (padded). Windows stop once one reaches the end of the
 * document. With the default stride (= context) the windows do not overlap: concatenating the
 * sequences' real inputs gives t[0..n-2] and their targets t[1..n-1] — every id is predicted
 * exactly once, and with the end-of-text id appended the inputs are exactly the document's own
 * tokens. A stride below `context` gives overlapping windows (ids predicted more than once).
 *
 * Documents that are empty or tokenize to fewer than 2 tokens (before the end-of-text id) are
 * not turned into sequences; each is listed in `skipped` with its reason, for the caller to
 * report — nothing is dropped silently.
 */
import type { Batch, Dataset } from '../data/dataset.js';
import { allocFloat, dtypeOf } from '../kernels/alloc.js';
import type { DType } from '../kernels/types.js';
import { IGNORE_INDEX } from '../losses/softmax-cross-entropy.js';
import { checkKnownKeys, checkNumber, describe, fail, InrunError } from '../util/errors.js';
import type { Tokenizer } from './tokenizer.js';

export interface TextDocument {
  /** Unique among the documents split together; sequence ids are `${id}#${k}`. */
  id: string;
  /** Where the document comes from (a corpus name, a file): kept on every sequence. */
  source: string;
  text: string;
  /** Optional human-readable title (e.g. "Abraham Lincoln, 1861"). */
  title?: string;
}

export interface TextSequence {
  /** `${documentId}#${index}`: unique when document ids are. */
  id: string;
  documentId: string;
  source: string;
  /** 0-based number of this sequence within its document. */
  index: number;
  /** Offset, in tokens within the document, of tokens[0] (= index · stride). */
  offset: number;
  /** The window's ids t[offset .. offset+length]: length+1 ≤ context+1 of them, no padding. */
  tokens: Int32Array;
  /** Model input, `context` ids: tokens[0..length-1], then the padding id. */
  inputs: Int32Array;
  /** Next-token targets, `context` ids: tokens[1..length], then −1 (ignored). */
  targets: Int32Array;
  /** Number of real (non-padding) positions, 1 ≤ length ≤ context. */
  length: number;
}

export type SkipReason = 'empty' | 'too-short';

export interface SkippedDocument {
  documentId: string;
  source: string;
  reason: SkipReason;
  /** Tokens the document's text encodes to (before any end-of-text id). */
  tokenCount: number;
  /** One line for a log, naming the document and why it was skipped. */
  message: string;
}

export interface SplitOptions {
  /** Positions per training sequence (the model's context length), an integer ≥ 1. */
  context: number;
  /** Tokens between the starts of consecutive windows, 1 ≤ stride ≤ context (default context). */
  stride?: number;
  /**
   * Append the tokenizer's end-of-text id to every document, so the model learns where documents
   * end (default true when the tokenizer has one; true with a tokenizer without one is an error).
   */
  appendEot?: boolean;
  /** Input id used for padding positions (default the end-of-text id, else 0); must be a valid id. */
  padToken?: number;
}

const OPTION_KEYS = ['context', 'stride', 'appendEot', 'padToken'];

export interface SplitResult {
  sequences: TextSequence[];
  /** Documents that produced no sequence, in input order, with reasons. */
  skipped: SkippedDocument[];
  /** Documents that produced at least one sequence. */
  documentCount: number;
  /** Tokens over all used documents, end-of-text ids included. */
  tokenCount: number;
}

/** Splits documents into next-token training sequences of `context` positions; see the module doc. */
export function splitIntoSequences(
  docs: readonly TextDocument[],
  tokenizer: Tokenizer,
  options: SplitOptions,
): SplitResult {
  if (!Array.isArray(docs)) fail(`splitIntoSequences: documents must be an array, got ${describe(docs)}`);
  if (options === null || typeof options !== 'object')
    fail(`splitIntoSequences: options must be an object with a context, got ${describe(options)}`);
  checkKnownKeys('splitIntoSequences', options, OPTION_KEYS);
  const context = checkNumber('context', options.context, { min: 1, integer: true });
  const stride = checkNumber('stride', options.stride ?? context, { min: 1, max: context, integer: true });
  const appendEot = options.appendEot ?? tokenizer.eotToken !== undefined;
  if (typeof appendEot !== 'boolean') fail(`appendEot must be a boolean, got ${describe(appendEot)}`);
  if (appendEot && tokenizer.eotToken === undefined)
    fail(`appendEot: the ${tokenizer.name} tokenizer has no end-of-text token`);
  const padToken = checkNumber('padToken', options.padToken ?? tokenizer.eotToken ?? 0, {
    min: 0,
    max: tokenizer.vocabSize - 1,
    integer: true,
  });

  const seen = new Set<string>();
  const sequences: TextSequence[] = [];
  const skipped: SkippedDocument[] = [];
  let documentCount = 0;
  let tokenCount = 0;

  docs.forEach((doc, position) => {
    checkDocument(doc, position, seen);
    let encoded: Int32Array;
    try {
      encoded = tokenizer.encode(doc.text);
    } catch (error) {
      if (error instanceof InrunError)
        fail(`document ${JSON.stringify(doc.id)} (${doc.source}): ${error.message}`);
      throw error;
    }
    if (encoded.length < 2) {
      const reason: SkipReason = doc.text.length === 0 ? 'empty' : 'too-short';
      const why =
        reason === 'empty' ? 'its text is empty' : `its text encodes to ${encoded.length} token (need ≥ 2)`;
      skipped.push({
        documentId: doc.id,
        source: doc.source,
        reason,
        tokenCount: encoded.length,
        message: `skipped document ${JSON.stringify(doc.id)} (${doc.source}): ${why}`,
      });
      return;
    }
    let ids = encoded;
    if (appendEot) {
      ids = new Int32Array(encoded.length + 1);
      ids.set(encoded);
      ids[encoded.length] = tokenizer.eotToken!;
    }
    documentCount++;
    tokenCount += ids.length;
    const n = ids.length;
    for (let index = 0, offset = 0; ; index++, offset += stride) {
      const length = Math.min(context, n - 1 - offset);
      const tokens = ids.slice(offset, offset + length + 1);
      const inputs = new Int32Array(context).fill(padToken);
      inputs.set(tokens.subarray(0, length));
      const targets = new Int32Array(context).fill(IGNORE_INDEX);
      targets.set(tokens.subarray(1));
      sequences.push({
        id: `${doc.id}#${index}`,
        documentId: doc.id,
        source: doc.source,
        index,
        offset,
        tokens,
        inputs,
        targets,
        length,
      });
      if (offset + length >= n - 1) break;
    }
  });
  return { sequences, skipped, documentCount, tokenCount };
}

function checkDocument(doc: TextDocument, position: number, seen: Set<string>): void {
  if (doc === null || typeof doc !== 'object')
    fail(`document ${position} must be an object, got ${describe(doc)}`);
  if (typeof doc.id !== 'string' || doc.id.length === 0)
    fail(`document ${position}: id must be a non-empty string, got ${describe(doc.id)}`);
  if (typeof doc.source !== 'string')
    fail(`document ${JSON.stringify(doc.id)}: source must be a string, got ${describe(doc.source)}`);
  if (typeof doc.text !== 'string')
    fail(`document ${JSON.stringify(doc.id)}: text must be a string, got ${describe(doc.text)}`);
  if (seen.has(doc.id)) fail(`duplicate document id ${JSON.stringify(doc.id)} (document ${position})`);
  seen.add(doc.id);
}

/** What {@link TextSequenceDataset} needs of a sequence (a {@link TextSequence} has all of it). */
export type SequenceExample = Pick<
  TextSequence,
  'id' | 'documentId' | 'source' | 'offset' | 'inputs' | 'targets'
>;

/**
 * Training sequences as an inrun Dataset for a language model: example i is sequence i, its input
 * the `context` token ids (as [context, width 1] values for the token embedding), its targets the
 * `context` next-token ids (−1 = ignored). `id(i)` is the sequence id (`${documentId}#${k}`) and
 * `group(i)` its source, so values total per source. Validated once, up front.
 */
export class TextSequenceDataset implements Dataset {
  readonly size: number;
  readonly example: { tokens: number; width: number };
  private readonly sequences: readonly SequenceExample[];

  constructor(
    readonly name: string,
    sequences: readonly SequenceExample[],
    readonly context: number,
  ) {
    checkNumber(`${name}: context`, context, { min: 1, integer: true });
    if (!Array.isArray(sequences)) fail(`${name}: sequences must be an array, got ${describe(sequences)}`);
    if (sequences.length === 0) fail(`${name}: no sequences`);
    const seen = new Map<string, number>();
    sequences.forEach((seq, i) => {
      const where = `${name}: sequence ${i} (${JSON.stringify(seq?.id)})`;
      if (typeof seq?.id !== 'string' || seq.id.length === 0) fail(`${where}: id must be a non-empty string`);
      const first = seen.get(seq.id);
      if (first !== undefined)
        fail(
          `${name}: id ${JSON.stringify(seq.id)} is used by sequences ${first} and ${i}; ids must be unique`,
        );
      seen.set(seq.id, i);
      if (!(seq.inputs instanceof Int32Array) || seq.inputs.length !== context)
        fail(`${where}: inputs must be an Int32Array of length ${context}`);
      if (!(seq.targets instanceof Int32Array) || seq.targets.length !== context)
        fail(`${where}: targets must be an Int32Array of length ${context}`);
      for (let t = 0; t < context; t++) {
        if (seq.inputs[t] < 0) fail(`${where}: input ${t} is ${seq.inputs[t]}; token ids are ≥ 0`);
        if (seq.targets[t] < IGNORE_INDEX)
          fail(`${where}: target ${t} is ${seq.targets[t]}; targets are token ids or ${IGNORE_INDEX}`);
      }
    });
    this.sequences = sequences.slice();
    this.size = sequences.length;
    this.example = { tokens: context, width: 1 };
  }

  id(index: number): string {
    return this.sequences[index].id;
  }

  group(index: number): string {
    return this.sequences[index].source;
  }

  /** Id of the document sequence `index` was cut from. */
  documentOf(index: number): string {
    return this.at(index).documentId;
  }

  /** Source (corpus) of sequence `index`'s document. */
  sourceOf(index: number): string {
    return this.at(index).source;
  }

  /** Token offset within its document of sequence `index`'s first input. */
  offsetOf(index: number): number {
    return this.at(index).offset;
  }

  private at(index: number): SequenceExample {
    const seq = this.sequences[index];
    if (!seq) fail(`${this.name}: no sequence at index ${index} (size ${this.size})`);
    return seq;
  }

  /** The sequence at `index` (document id, offset, ids). */
  sequence(index: number): SequenceExample {
    return this.sequences[index];
  }

  batch(indices: ArrayLike<number>, dtype: DType, into?: Batch): Batch {
    const T = this.context;
    const n = indices.length;
    // Every element of both arrays is written below, so `into`'s are reused when they fit.
    const fits =
      into?.input.ids?.length === n * T &&
      into.targets instanceof Int32Array &&
      into.targets.length === n * T &&
      dtypeOf(into.input.data) === dtype;
    if (fits) {
      const { input, targets } = into;
      this.fill(indices, input.ids!, targets as Int32Array);
      return { input: { data: input.data, n, tokens: T, width: 1, ids: input.ids }, targets };
    }
    const ids = new Int32Array(n * T);
    const targets = new Int32Array(n * T);
    this.fill(indices, ids, targets);
    // Token inputs: the ids ride alongside an empty feature array (see Activation.ids).
    return { input: { data: allocFloat(dtype, 0), n, tokens: T, width: 1, ids }, targets };
  }

  /** The sequences at `indices`, row after row, into ids and targets. */
  private fill(indices: ArrayLike<number>, ids: Int32Array, targets: Int32Array): void {
    const T = this.context;
    const n = indices.length;
    for (let r = 0; r < n; r++) {
      const seq = this.sequences[indices[r]];
      if (!seq) fail(`${this.name}: no sequence at index ${indices[r]} (size ${this.size})`);
      ids.set(seq.inputs, r * T);
      targets.set(seq.targets, r * T);
    }
  }

  /** A new dataset with the sequences at `indices`. */
  subset(indices: ArrayLike<number>, name = this.name): TextSequenceDataset {
    return new TextSequenceDataset(
      name,
      Array.from(indices, (i) => this.sequences[i]),
      this.context,
    );
  }
}
