import type { LedgerEntry, ValueLedger } from '../shapley/ledger.js';
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

/** A training document's value for one query (a validation document), from per-validation columns. */
export interface DocumentQueryValue {
  /** Column of the query in the per-validation values. */
  query: number;
  documentId: string;
  source: string;
  /** The document's sequences, and how many of them were trained on (valued). */
  sequences: number;
  sequencesValued: number;
  /** Occurrences of its sequences in training batches. */
  timesSeen: number;
  firstOrder: number;
  /** NaN without second-order per-validation values. */
  secondOrder: number;
  /** Σ of its sequences' per-step normalised values for this query. */
  normalized: number;
  /** Its sequence with the largest normalised value for this query (null: none valued). */
  bestSequence: string | null;
  bestNormalized: number;
  /** Main value (second order when kept) per training stage. */
  stages: number[];
}

/**
 * Per query and training document, the sums of the document's sequences' per-validation values
 * (exact, as values are additive), with its coverage and its best sequence. Every document of
 * `sequences` appears for every query, valued or not, so coverage gaps show.
 */
export function documentQueryValues(
  ledger: ValueLedger,
  sequences: readonly TextSequence[],
  queryCount: number,
): DocumentQueryValue[][] {
  const stageCount = ledger.stageCount;
  const byQuery: Map<string, DocumentQueryValue>[] = Array.from({ length: queryCount }, () => new Map());
  for (const s of sequences) {
    for (let q = 0; q < queryCount; q++) {
      let row = byQuery[q].get(s.documentId);
      if (!row) {
        row = {
          query: q,
          documentId: s.documentId,
          source: s.source,
          sequences: 0,
          sequencesValued: 0,
          timesSeen: 0,
          firstOrder: 0,
          secondOrder: 0,
          normalized: 0,
          bestSequence: null,
          bestNormalized: Number.NaN,
          stages: new Array(stageCount).fill(0),
        };
        byQuery[q].set(s.documentId, row);
      }
      row.sequences += 1;
      const entry = ledger.get(s.id);
      if (!entry?.perValidation) continue;
      if (entry.perValidation.length !== queryCount)
        throw new Error(
          `internal: ${entry.perValidation.length} per-validation columns, expected ${queryCount}`,
        );
      row.sequencesValued += 1;
      row.timesSeen += entry.timesSeen;
      row.firstOrder += entry.perValidation[q];
      row.secondOrder += entry.perValidationSecond ? entry.perValidationSecond[q] : Number.NaN;
      const normalized = entry.perValidationNormalized![q];
      row.normalized += normalized;
      if (row.bestSequence === null || normalized > row.bestNormalized) {
        row.bestSequence = String(entry.id);
        row.bestNormalized = normalized;
      }
      const main = entry.perValidationSecond ?? entry.perValidation;
      for (let stage = 0; stage < stageCount; stage++)
        row.stages[stage] += entry.perValidationStages
          ? entry.perValidationStages[q * stageCount + stage]
          : main[q];
    }
  }
  return byQuery.map((rows) => [...rows.values()]);
}
