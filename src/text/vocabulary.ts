import { IGNORE_INDEX } from '../losses/softmax-cross-entropy.js';
import type { TextSequence } from './sequences.js';

/**
 * Renumbers the token ids that actually occur in a set of sequences to 0..size−1. A small model
 * trained on a few corpora uses a few thousand of GPT-2's 50,257 ids; its embedding and output
 * head then shrink accordingly (the values are unchanged in meaning: unused rows would only
 * ever receive zero gradient). `original[k]` maps back for decoding.
 */
export interface CompactVocabulary {
  size: number;
  original: Int32Array;
  /** A copy of the sequence with compact ids (ignored targets stay −1). */
  remap(sequence: TextSequence): TextSequence;
  /**
   * A held-out sequence (validation text) in compact ids, for a vocabulary built without it: a
   * token the vocabulary lacks reads as `standIn` (a tokenizer id the vocabulary has, e.g.
   * end-of-text) where it is an input, and is not scored (−1) where it is a target. `unknown`
   * counts those tokens.
   */
  remapHeldOut(sequence: TextSequence, standIn: number): { sequence: TextSequence; unknown: number };
}

export function compactVocabulary(...sequenceSets: TextSequence[][]): CompactVocabulary {
  const used = new Set<number>();
  for (const set of sequenceSets) {
    for (const s of set) {
      for (const id of s.inputs) used.add(id);
      for (const id of s.targets) if (id !== IGNORE_INDEX) used.add(id);
    }
  }
  const original = Int32Array.from([...used].sort((a, b) => a - b));
  const compact = new Map<number, number>();
  original.forEach((id, k) => {
    compact.set(id, k);
  });
  const map = (ids: Int32Array) =>
    ids.map((id) => {
      if (id === IGNORE_INDEX) return id;
      const k = compact.get(id);
      if (k === undefined) throw new Error(`internal: token ${id} is not in the compact vocabulary`);
      return k;
    });
  const heldOut = (ids: Int32Array, unknownAs: number, counter: { unknown: number }) =>
    ids.map((id) => {
      if (id === IGNORE_INDEX) return id;
      const k = compact.get(id);
      if (k !== undefined) return k;
      counter.unknown += 1;
      return unknownAs;
    });
  return {
    size: original.length,
    original,
    remap: (s) => ({ ...s, tokens: map(s.tokens), inputs: map(s.inputs), targets: map(s.targets) }),
    remapHeldOut: (s, standIn) => {
      const stand = compact.get(standIn);
      if (stand === undefined)
        throw new Error(`internal: stand-in token ${standIn} is not in the vocabulary`);
      const counted = { unknown: 0 };
      const sequence = {
        ...s,
        tokens: heldOut(s.tokens, stand, { unknown: 0 }),
        inputs: heldOut(s.inputs, stand, { unknown: 0 }),
        targets: heldOut(s.targets, IGNORE_INDEX, counted),
      };
      return { sequence, unknown: counted.unknown };
    },
  };
}
