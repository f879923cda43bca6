// Text data for `inrun train` with model kind `gpt`: documents from a .txt/.md file, a folder of
// them, or a table (JSONL, CSV, Parquet) with a text column, cut into next-token sequences (the
// training examples). Everything is checked before anything is written; documents that give no
// sequence (empty, too short) are reported one line each, never dropped silently.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, extname, join, relative, sep } from 'node:path';
import {
  checkRegularFile,
  displayPath,
  location,
  readTable,
  type Table,
  tableIds,
} from '../data/readers/index.js';
import type { DataFileInfo, VocabularyFile } from '../io/run-dir.js';

export type { VocabularyFile } from '../io/run-dir.js';

import { IGNORE_INDEX } from '../losses/softmax-cross-entropy.js';
import {
  type SkippedDocument,
  splitIntoSequences,
  type TextDocument,
  type TextSequence,
  TextSequenceDataset,
} from '../text/sequences.js';
import { decodeUtf8Strict, getTokenizer, type Tokenizer } from '../text/tokenizer.js';
import { compactVocabulary } from '../text/vocabulary.js';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import { sha256Hex } from '../util/hash.js';
import type { TrainConfig } from './config.js';
import { PART, splitParts } from './data.js';

type GptConfig = Extract<TrainConfig['model'], { kind: 'gpt' }>;

/** File extensions read as plain-text documents. */
export const TEXT_EXTENSIONS = ['.txt', '.md'];
/** Table files read with a text column. */
const TABLE_EXTENSIONS = ['.jsonl', '.ndjson', '.csv', '.parquet'];
const TEXT_SOURCES = '.txt/.md files, folders of them, or .jsonl/.csv/.parquet with a text column';

export interface TextSource {
  /** How the documents were read, with the sha256 (of the file, or of a folder's file list and contents). */
  info: DataFileInfo;
  documents: TextDocument[];
}

/** Held-out text (validation or test): its sequences as a dataset, their ids, and the documents. */
export interface HeldOutText {
  dataset: TextSequenceDataset;
  ids: string[];
  documents: TextDocument[];
  /**
   * Each sequence's scored target tokens: as loss weights they make the held-out loss the mean over
   * tokens, so a document's one-token tail weighs one token, not a whole sequence.
   */
  weights: Float64Array;
  /** Each sequence's document, as an index into `queries` (first-appearance order). */
  columns: Int32Array;
  /** The documents that gave sequences, in first-appearance order: the queries of per-validation values. */
  queries: HeldOutDocument[];
}

export interface HeldOutDocument {
  documentId: string;
  source: string;
  sequences: number;
  /** Scored target tokens over its sequences. */
  tokens: number;
}

function heldOut(
  where: string,
  sequences: TextSequence[],
  context: number,
  documents: TextDocument[],
): HeldOutText {
  const weights = Float64Array.from(sequences, (s) => s.targets.filter((t) => t !== IGNORE_INDEX).length);
  if (weights.every((w) => w === 0))
    fail(
      `${where}: none of its tokens occurs in the training text, so there is nothing to score (the model only knows the training text's tokens)`,
    );
  const index = new Map<string, number>();
  const queries: HeldOutDocument[] = [];
  const columns = Int32Array.from(sequences, (s, k) => {
    let q = index.get(s.documentId);
    if (q === undefined) {
      q = queries.length;
      index.set(s.documentId, q);
      queries.push({ documentId: s.documentId, source: s.source, sequences: 0, tokens: 0 });
    }
    queries[q].sequences += 1;
    queries[q].tokens += weights[k];
    return q;
  });
  return {
    dataset: new TextSequenceDataset(where, sequences, context),
    ids: sequences.map((s) => s.id),
    documents,
    weights,
    columns,
    queries,
  };
}

export interface TextTrainingData {
  train: { dataset: TextSequenceDataset; sequences: TextSequence[]; documents: TextDocument[] };
  validation: HeldOutText;
  /** The held-out test text (data.test or data.testSplit); null without one. */
  test: HeldOutText | null;
  trainInfo: DataFileInfo;
  /** The validation source, or null when validation documents were split off data.train. */
  validationInfo: DataFileInfo | null;
  /** The test source, or null when test documents were split off data.train (or there is none). */
  testInfo: DataFileInfo | null;
  tokenizer: Tokenizer;
  vocabulary: VocabularyFile;
  /** Documents that gave no sequence, training, validation then test, each with its log line. */
  skipped: SkippedDocument[];
  /**
   * Token counts; `validationUnknown` (`testUnknown`): validation (test) target tokens the training
   * text never has (not scored). The test counts only with a test set.
   */
  tokens: {
    train: number;
    validation: number;
    validationUnknown: number;
    test?: number;
    testUnknown?: number;
  };
}

function readBytes(path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT') fail(`${displayPath(path)}: cannot read the text file (no such file)`);
    return failFileError(error, displayPath(path), 'read the text file');
  }
}

/** Every .txt/.md file under `dir` (names starting with "." skipped), relative paths with "/", sorted. */
function listTextFiles(dir: string): string[] {
  const found: string[] = [];
  const visited = new Set<string>();
  const walk = (folder: string) => {
    // Folders reached twice through symbolic links are read once (no loops).
    let real: string;
    let names: string[];
    try {
      real = realpathSync(folder);
      names = readdirSync(folder).sort();
    } catch (error) {
      return failFileError(error, displayPath(folder), 'read the folder');
    }
    if (visited.has(real)) return;
    visited.add(real);
    for (const name of names) {
      if (name.startsWith('.')) continue;
      const path = join(folder, name);
      let info: ReturnType<typeof statSync>;
      try {
        info = statSync(path);
      } catch (error) {
        if (errorCode(error) === 'ENOENT') fail(`${displayPath(path)}: cannot read (broken link)`);
        return failFileError(error, displayPath(path), 'read');
      }
      if (info.isDirectory()) walk(path);
      else if (info.isFile() && TEXT_EXTENSIONS.includes(extname(name).toLowerCase()))
        found.push(relative(dir, path).split(sep).join('/'));
    }
  };
  walk(dir);
  // Code-point order, independent of locale.
  return found.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

/**
 * Reads the documents of a text source: a .txt/.md file (one document, id the file name), a
 * folder (one document per .txt/.md file, id its relative path, source its first sub-folder or
 * else the folder's name), or a table with a text column (id column or row number; source the
 * group column or else the file's name).
 */
export async function readTextSource(
  path: string,
  columns: TrainConfig['columns'],
  role: 'training' | 'validation' | 'test',
): Promise<TextSource> {
  const shown = displayPath(path);
  let info: ReturnType<typeof statSync>;
  try {
    info = statSync(path);
  } catch (error) {
    if (errorCode(error) === 'ENOENT')
      fail(`${shown}: cannot read the ${role} text (no such file or folder)`);
    return failFileError(error, shown, `read the ${role} text`);
  }
  if (info.isDirectory()) {
    const files = listTextFiles(path);
    if (files.length === 0)
      fail(`${shown}: the ${role} folder holds no text files (${TEXT_EXTENSIONS.join(', ')})`);
    const hash = createHash('sha256');
    let bytes = 0;
    const folderName = basename(path);
    const documents = files.map((rel) => {
      const content = readBytes(join(path, rel));
      bytes += content.length;
      hash.update(`${rel}\0${sha256Hex(content)}\n`);
      const slash = rel.indexOf('/');
      return {
        id: rel,
        source: slash > 0 ? rel.slice(0, slash) : folderName,
        text: decodeUtf8Strict(content, displayPath(join(path, rel))),
      };
    });
    return {
      info: { path, format: 'folder', sha256: hash.digest('hex'), bytes, rows: documents.length },
      documents,
    };
  }
  // A named pipe or device is refused before anything waits on it.
  await checkRegularFile(path, `the ${role} text`, TEXT_SOURCES);
  const ext = extname(path).toLowerCase();
  if (TEXT_EXTENSIONS.includes(ext)) {
    const content = readBytes(path);
    const name = basename(path);
    return {
      info: { path, format: 'text', sha256: sha256Hex(content), bytes: content.length, rows: 1 },
      documents: [
        { id: name, source: basename(path, extname(path)), text: decodeUtf8Strict(content, shown) },
      ],
    };
  }
  if (!TABLE_EXTENSIONS.includes(ext))
    fail(
      `${shown}: ${ext === '' ? 'no file extension to tell the text data type' : `unknown text data type ${JSON.stringify(ext)}`} (gpt reads ${TEXT_SOURCES})`,
    );
  const table = await readTable(path);
  return { info: tableInfo(table), documents: tableDocuments(table, columns) };
}

function tableInfo(table: Table): DataFileInfo {
  return {
    path: table.path,
    format: table.format,
    sha256: table.sha256,
    bytes: table.bytes,
    rows: table.rows.length,
  };
}

function tableDocuments(table: Table, columns: TrainConfig['columns']): TextDocument[] {
  const shown = displayPath(table.path);
  const textColumn = columns.text ?? 'text';
  for (const [what, name] of [
    ['text', textColumn],
    ['id', columns.id],
    ['group', columns.group],
  ] as const)
    if (name !== undefined && !table.columns.includes(name))
      fail(
        `${shown}: no ${what} column ${JSON.stringify(name)} (columns: ${table.columns.join(', ')})${what === 'text' && columns.text === undefined ? '; set columns.text' : ''}`,
      );
  const ids = tableIds(table, table.rows, columns.id);
  const fileSource = basename(table.path, extname(table.path));
  return table.rows.map((row, i) => {
    const cell = row.cells[textColumn];
    if (cell !== null && cell !== undefined && typeof cell !== 'string')
      fail(`${location(table, row, textColumn)}: text must be a string, got ${typeof cell}`);
    let source = fileSource;
    if (columns.group !== undefined) {
      const g = row.cells[columns.group];
      if (typeof g === 'string' && g !== '') source = g;
      else if (typeof g === 'number' || typeof g === 'bigint' || typeof g === 'boolean') source = String(g);
      else if (g !== null && g !== undefined && g !== '')
        fail(`${location(table, row, columns.group)}: group must be a string or a number`);
    }
    return { id: ids[i], source, text: (cell as string | null | undefined) ?? '' };
  });
}

/** Loads text training and validation data for a gpt config; see the module doc. */
export async function loadTextTrainingData(config: TrainConfig): Promise<TextTrainingData> {
  const model = config.model as GptConfig;
  if (model.kind !== 'gpt') fail(`internal: loadTextTrainingData needs model kind gpt, got ${model.kind}`);
  const tokenizer = getTokenizer(model.tokenizer);
  const train = await readTextSource(config.data.train, config.columns, 'training');
  let trainDocs = train.documents;
  let validationDocs: TextDocument[] = [];
  let validationInfo: DataFileInfo | null = null;
  let testDocs: TextDocument[] = [];
  let testInfo: DataFileInfo | null = null;
  const hasTest = config.data.test !== undefined || config.data.testSplit !== undefined;
  if (config.data.validation !== undefined) {
    const validation = await readTextSource(config.data.validation, config.columns, 'validation');
    validationDocs = validation.documents;
    validationInfo = validation.info;
  }
  if (config.data.test !== undefined) {
    const test = await readTextSource(config.data.test, config.columns, 'test');
    testDocs = test.documents;
    testInfo = test.info;
    for (const [role, other] of [
      ['training', train.info],
      ['validation', validationInfo],
    ] as const)
      if (other && other.sha256 === test.info.sha256)
        fail(
          `data.test ${displayPath(config.data.test)}: has the same content as the ${role} text ${displayPath(other.path)}; the test set must be held out (or use data.testSplit)`,
        );
  }
  if (config.data.validationSplit !== undefined || config.data.testSplit !== undefined) {
    const n = trainDocs.length;
    const parts = splitParts(
      n,
      config.seed,
      { validation: config.data.validationSplit, test: config.data.testSplit },
      {
        count: `${n} document${n === 1 ? '' : 's'}`,
        where: displayPath(config.data.train),
        unit: 'documents',
      },
    );
    if (config.data.validationSplit !== undefined)
      validationDocs = trainDocs.filter((_, i) => parts[i] === PART.validation);
    if (config.data.testSplit !== undefined) testDocs = trainDocs.filter((_, i) => parts[i] === PART.test);
    trainDocs = trainDocs.filter((_, i) => parts[i] === PART.train);
  }
  const context = model.context;
  const trainSplit = splitIntoSequences(trainDocs, tokenizer, { context });
  const validationSplit = splitIntoSequences(validationDocs, tokenizer, { context });
  const testSplit = hasTest ? splitIntoSequences(testDocs, tokenizer, { context }) : null;
  const trainWhere = displayPath(config.data.train);
  const validationWhere =
    config.data.validation !== undefined
      ? displayPath(config.data.validation)
      : `${trainWhere} (validation split)`;
  const testWhere =
    config.data.test !== undefined ? displayPath(config.data.test) : `${trainWhere} (test split)`;
  if (trainSplit.sequences.length === 0)
    fail(
      `${trainWhere}: the training text tokenizes to nothing (${trainDocs.length} document${trainDocs.length === 1 ? '' : 's'}, each empty or shorter than 2 ${model.tokenizer} tokens)`,
    );
  if (validationSplit.sequences.length === 0)
    fail(
      `${validationWhere}: the validation text tokenizes to nothing (${validationDocs.length} document${validationDocs.length === 1 ? '' : 's'}, each empty or shorter than 2 ${model.tokenizer} tokens)`,
    );
  if (testSplit && testSplit.sequences.length === 0)
    fail(
      `${testWhere}: the test text tokenizes to nothing (${testDocs.length} document${testDocs.length === 1 ? '' : 's'}, each empty or shorter than 2 ${model.tokenizer} tokens)`,
    );
  let trainSequences = trainSplit.sequences;
  let validationSequences = validationSplit.sequences;
  let testSequences = testSplit?.sequences ?? [];
  let vocabulary: VocabularyFile;
  let unknownValidationTokens = 0;
  let unknownTestTokens = 0;
  if (model.compactVocabulary) {
    // From the training text alone: the validation text must not change the model (its size, and
    // so its initial weights), or a query's values would depend on the other queries.
    const compact = compactVocabulary(trainSequences);
    // The padding id (end-of-text) exists in the compact vocabulary: every training document ends
    // with it. A validation token the training text never has reads as end-of-text and is not
    // scored (the model could only ever give it its initial probability).
    trainSequences = trainSequences.map(compact.remap);
    validationSequences = validationSequences.map((s) => {
      const { sequence, unknown } = compact.remapHeldOut(s, tokenizer.eotToken!);
      unknownValidationTokens += unknown;
      return sequence;
    });
    // The test text is held out alike: it never changes the model either.
    testSequences = testSequences.map((s) => {
      const { sequence, unknown } = compact.remapHeldOut(s, tokenizer.eotToken!);
      unknownTestTokens += unknown;
      return sequence;
    });
    if (compact.size < 2)
      fail(`${trainWhere}: the text uses ${compact.size} distinct token; a language model needs at least 2`);
    vocabulary = {
      tokenizer: tokenizer.name,
      size: compact.size,
      tokenizerSize: tokenizer.vocabSize,
      original: Array.from(compact.original),
    };
  } else
    vocabulary = {
      tokenizer: tokenizer.name,
      size: tokenizer.vocabSize,
      tokenizerSize: tokenizer.vocabSize,
      original: null,
    };
  checkIds(trainSequences, vocabulary.size);
  const trainDataset = new TextSequenceDataset(trainWhere, trainSequences, context);
  return {
    train: { dataset: trainDataset, sequences: trainSequences, documents: trainDocs },
    validation: heldOut(`${validationWhere} (validation)`, validationSequences, context, validationDocs),
    test: testSplit ? heldOut(`${testWhere} (test)`, testSequences, context, testDocs) : null,
    trainInfo: train.info,
    validationInfo,
    testInfo,
    tokenizer,
    vocabulary,
    skipped: [
      ...trainSplit.skipped,
      ...validationSplit.skipped.map((s) => ({ ...s, message: `validation: ${s.message}` })),
      ...(testSplit?.skipped ?? []).map((s) => ({ ...s, message: `test: ${s.message}` })),
    ],
    tokens: {
      train: trainSplit.tokenCount,
      validation: validationSplit.tokenCount,
      validationUnknown: unknownValidationTokens,
      ...(testSplit ? { test: testSplit.tokenCount, testUnknown: unknownTestTokens } : {}),
    },
  };
}

function checkIds(sequences: TextSequence[], size: number): void {
  for (const s of sequences)
    for (const ids of [s.inputs, s.targets])
      for (const id of ids)
        if (id !== IGNORE_INDEX && (id < 0 || id >= size))
          throw new Error(`internal: token id ${id} of ${s.id} outside the vocabulary of ${size}`);
}
