import type { ExampleId } from '../data/dataset.js';
import { type LedgerEntry, ValueLedger } from '../shapley/ledger.js';
import type { TextSequence } from './sequences.js';

/** A document's value: the sum of the values of the sequences it was split into. */
export interface DocumentValue {
  documentId: string;
  source: string;
  /** Sequences of the document that were trained on (seen at least once). */
  sequences: number;
  firstOrder: number;
  secondOrder: number;
  /** Main value (second order when computed) per training stage. */
  stages: number[];
}

/** Sums sequence values to documents (values are additive, so this is exact, not an estimate). */
export function documentValues(ledger: ValueLedger, sequences: readonly TextSequence[]): DocumentValue[] {
  const byId = new Map(sequences.map((s) => [s.id, s]));
  const documents = new Map<string, DocumentValue>();
  for (const entry of ledger.all()) {
    const sequence = byId.get(String(entry.id));
    if (!sequence) continue;
    let doc = documents.get(sequence.documentId);
    if (!doc) {
      doc = {
        documentId: sequence.documentId,
        source: sequence.source,
        sequences: 0,
        firstOrder: 0,
        secondOrder: 0,
        stages: new Array(ledger.stageCount).fill(0),
      };
      documents.set(sequence.documentId, doc);
    }
    add(doc, entry);
  }
  return [...documents.values()];
}

function add(doc: DocumentValue, entry: LedgerEntry): void {
  doc.sequences += 1;
  doc.firstOrder += entry.firstOrder;
  doc.secondOrder += entry.secondOrder;
  entry.stages.forEach((v, s) => {
    doc.stages[s] += v;
  });
}

/** A sequence's value source: a map from sequence id to value, a ledger, or ledger entries. */
export type SequenceValues = ReadonlyMap<ExampleId, number> | ValueLedger | Iterable<LedgerEntry>;

export interface AggregateOptions {
  /**
   * Which number of a ledger entry to sum (default: the ledger's main value — second order when
   * computed — or, for bare entries, the second order unless it is NaN, else the first order).
   */
  pick?: (entry: LedgerEntry) => number;
}

export interface DocumentTotal {
  documentId: string;
  source: string;
  /** Sequences of the document in the dataset. */
  sequences: number;
  /** Of those, how many had a value (the others count as 0: never trained on). */
  valued: number;
  value: number;
}

export interface SourceTotal {
  source: string;
  documents: number;
  sequences: number;
  valued: number;
  value: number;
}

export interface AggregateResult {
  /** In first-appearance order of the sequences. */
  documents: DocumentTotal[];
  sources: SourceTotal[];
  /** Ids among the values that name no sequence (reported, not silently dropped). */
  unknownIds: ExampleId[];
}

/**
 * Per-document and per-source totals of sequence values: a document's value is the sum of its
 * sequences' values, a source's the sum of its documents' (values are additive, so this is exact).
 */
export function aggregateSequenceValues(
  sequences: readonly Pick<TextSequence, 'id' | 'documentId' | 'source'>[],
  values: SequenceValues,
  options: AggregateOptions = {},
): AggregateResult {
  const byId = new Map<string, number>();
  if (values instanceof Map) {
    for (const [id, v] of values as ReadonlyMap<ExampleId, number>) byId.set(String(id), v);
  } else {
    const ledger = values instanceof ValueLedger ? values : undefined;
    const entries = ledger ? ledger.all() : (values as Iterable<LedgerEntry>);
    const pick =
      options.pick ??
      (ledger
        ? (e: LedgerEntry) => ledger.value(e)
        : (e: LedgerEntry) => (Number.isNaN(e.secondOrder) ? e.firstOrder : e.secondOrder));
    for (const entry of entries) byId.set(String(entry.id), pick(entry));
  }
  const documents = new Map<string, DocumentTotal>();
  const known = new Set<string>();
  for (const seq of sequences) {
    known.add(seq.id);
    let doc = documents.get(seq.documentId);
    if (!doc) {
      doc = { documentId: seq.documentId, source: seq.source, sequences: 0, valued: 0, value: 0 };
      documents.set(seq.documentId, doc);
    }
    doc.sequences++;
    const v = byId.get(seq.id);
    if (v !== undefined) {
      doc.valued++;
      doc.value += v;
    }
  }
  const sources = new Map<string, SourceTotal>();
  for (const doc of documents.values()) {
    let total = sources.get(doc.source);
    if (!total) {
      total = { source: doc.source, documents: 0, sequences: 0, valued: 0, value: 0 };
      sources.set(doc.source, total);
    }
    total.documents++;
    total.sequences += doc.sequences;
    total.valued += doc.valued;
    total.value += doc.value;
  }
  const unknownIds: ExampleId[] = [];
  for (const id of byId.keys()) if (!known.has(id)) unknownIds.push(id);
  return { documents: [...documents.values()], sources: [...sources.values()], unknownIds };
}
