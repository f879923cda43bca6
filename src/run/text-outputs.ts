// The extra run-directory files of a text (gpt) run: documents.csv (per-document totals of the
// sequence values), sources.csv (per-source totals, per stage) and vocabulary.json (the token-id
// mapping, written at the start so a resumed run can check it and a report can decode tokens).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../io/atomic.js';
import type { VocabularyFile } from '../io/run-dir.js';
import { RUN_FILES, type TextManifest } from '../io/run-dir.js';
import { type CsvCell, csvField } from '../io/values-csv.js';
import type { ValueLedger } from '../shapley/ledger.js';
import { type DocumentValue, documentQueryValues, documentValues } from '../text/aggregate.js';
import { attribution } from '../text/attribution.js';
import { fail } from '../util/errors.js';
import { errorCode, failFileError } from '../util/fs-errors.js';
import type { TextTrainingData } from './text-data.js';

export function textManifest(data: TextTrainingData): TextManifest {
  return {
    tokenizer: data.vocabulary.tokenizer,
    vocabularySize: data.vocabulary.size,
    compactVocabulary: data.vocabulary.original !== null,
    context: data.train.dataset.context,
    trainDocuments: data.train.documents.length,
    validationDocuments: data.validation.documents.length,
    trainTokens: data.tokens.train,
    validationTokens: data.tokens.validation,
    validationUnknownTokens: data.tokens.validationUnknown,
    ...(data.test
      ? {
          testDocuments: data.test.documents.length,
          testTokens: data.tokens.test ?? 0,
          testUnknownTokens: data.tokens.testUnknown ?? 0,
        }
      : {}),
    skipped: data.skipped.map((s) => s.message),
  };
}

/** Resume: the vocabulary rebuilt from the (unchanged) data must equal the recorded one. */
export async function checkRecordedVocabulary(runDir: string, vocabulary: VocabularyFile): Promise<void> {
  const path = join(runDir, RUN_FILES.vocabulary);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if (errorCode(error) === 'ENOENT')
      return fail(`${path}: missing; the run cannot be resumed without its token vocabulary`);
    return failFileError(error, path, 'read');
  }
  if (text !== `${JSON.stringify(vocabulary, null, 2)}\n`)
    fail(
      `${path}: the token vocabulary rebuilt from the data differs from the recorded one; resume needs the same data and tokenizer`,
    );
}

/**
 * Per-document values (documentValues: first-seen order of the ledger, then documents none of
 * whose sequences were trained on, with zeros) and per-source totals (first-appearance order).
 */
export function documentRows(ledger: ValueLedger, data: TextTrainingData): DocumentValue[] {
  const rows = documentValues(ledger, data.train.sequences);
  const seen = new Set(rows.map((r) => r.documentId));
  const stages = ledger.stageCount;
  for (const s of data.train.sequences) {
    if (seen.has(s.documentId)) continue;
    seen.add(s.documentId);
    rows.push({
      documentId: s.documentId,
      source: s.source,
      sequences: 0,
      firstOrder: 0,
      secondOrder: 0,
      stages: new Array(stages).fill(0),
    });
  }
  return rows;
}

export interface SourceRow {
  source: string;
  documents: number;
  sequences: number;
  firstOrder: number;
  secondOrder: number;
  stages: number[];
}

export function sourceRows(documents: DocumentValue[], stageCount: number): SourceRow[] {
  const sources = new Map<string, SourceRow>();
  for (const doc of documents) {
    let row = sources.get(doc.source);
    if (!row) {
      row = {
        source: doc.source,
        documents: 0,
        sequences: 0,
        firstOrder: 0,
        secondOrder: 0,
        stages: new Array(stageCount).fill(0),
      };
      sources.set(doc.source, row);
    }
    row.documents += 1;
    row.sequences += doc.sequences;
    row.firstOrder += doc.firstOrder;
    row.secondOrder += doc.secondOrder;
    doc.stages.forEach((v, s) => {
      row.stages[s] += v;
    });
  }
  return [...sources.values()];
}

function csv(header: string[], rows: CsvCell[][]): string {
  return `${[header, ...rows].map((cells) => cells.map(csvField).join(',')).join('\n')}\n`;
}

/** attribution.csv: every query's training documents, ranked (src/text/attribution.ts). */
export function attributionCsv(ledger: ValueLedger, data: TextTrainingData): string {
  const queries = data.validation.queries;
  const queryTexts = new Map(data.validation.documents.map((d) => [d.id, d.text]));
  const ranked = attribution(
    documentQueryValues(ledger, data.train.sequences, queries.length),
    queries.map((q) => ({
      documentId: q.documentId,
      source: q.source,
      text: queryTexts.get(q.documentId) ?? '',
    })),
    new Map(data.train.documents.map((d) => [d.id, d.text])),
  );
  const stages = Array.from({ length: ledger.stageCount }, (_, s) => `stage_${s}`);
  const finite = (v: number) => (Number.isFinite(v) ? v : null);
  return csv(
    [
      'query_id',
      'query_source',
      'rank',
      'document_id',
      'source',
      'sequences',
      'sequences_valued',
      'times_seen',
      'first_order',
      'second_order',
      'normalized',
      'best_sequence',
      'best_normalized',
      'rank_tfidf',
      'rank_bm25',
      ...stages,
    ],
    ranked.flatMap((rows, q) =>
      rows.map((r) => [
        queries[q].documentId,
        queries[q].source,
        r.rank,
        r.documentId,
        r.source,
        r.sequences,
        r.sequencesValued,
        r.timesSeen,
        r.firstOrder,
        finite(r.secondOrder),
        r.normalized,
        r.bestSequence,
        finite(r.bestNormalized),
        r.rankTfidf,
        r.rankBm25,
        ...r.stages,
      ]),
    ),
  );
}

/** Writes documents.csv, sources.csv and, with per-validation values, attribution.csv. */
export async function textRunOutputs(
  runDir: string,
  ledger: ValueLedger,
  data: TextTrainingData,
  order: 1 | 2,
): Promise<void> {
  const stages = Array.from({ length: ledger.stageCount }, (_, s) => `stage_${s}`);
  const second = (v: number) => (order === 2 ? v : null);
  const documents = documentRows(ledger, data);
  await writeFileAtomic(
    join(runDir, RUN_FILES.documents),
    csv(
      ['document_id', 'source', 'sequences', 'first_order', 'second_order', ...stages],
      documents.map((d) => [
        d.documentId,
        d.source,
        d.sequences,
        d.firstOrder,
        second(d.secondOrder),
        ...d.stages,
      ]),
    ),
  );
  await writeFileAtomic(
    join(runDir, RUN_FILES.sources),
    csv(
      ['source', 'documents', 'sequences', 'first_order', 'second_order', ...stages],
      sourceRows(documents, ledger.stageCount).map((r) => [
        r.source,
        r.documents,
        r.sequences,
        r.firstOrder,
        second(r.secondOrder),
        ...r.stages,
      ]),
    ),
  );
  if (ledger.options.validationSize !== undefined)
    await writeFileAtomic(join(runDir, RUN_FILES.attribution), attributionCsv(ledger, data));
}
