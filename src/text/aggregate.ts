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
