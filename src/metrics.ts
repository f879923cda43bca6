import { fail } from './util/errors.js';

/**
 * Area under the ROC curve of `scores` for telling `positives` from the rest: the probability that
 * a random positive scores higher than a random negative, ties counting one half (the Mann–Whitney
 * U statistic over nPos·nNeg). Exact, in O(n log n), via mid-ranks.
 */
export function auroc(scores: ArrayLike<number>, positives: ArrayLike<boolean>): number {
  const n = scores.length;
  if (positives.length !== n) fail(`auroc: ${n} scores but ${positives.length} labels`);
  let nPos = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) fail(`auroc: score ${i} is NaN`);
    if (positives[i]) nPos++;
  }
  const nNeg = n - nPos;
  if (nPos === 0) fail('auroc: there are no positives');
  if (nNeg === 0) fail('auroc: there are no negatives');

  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b] || a - b);
  // Sum of the (1-based, tie-averaged) ranks of the positives.
  let rankSum = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]] === scores[order[start]]) end++;
    const midRank = (start + 1 + end) / 2;
    for (let k = start; k < end; k++) if (positives[order[k]]) rankSum += midRank;
    start = end;
  }
  const u = rankSum - (nPos * (nPos + 1)) / 2;
  return u / (nPos * nNeg);
}

/** Checks the inputs shared by the ranking metrics; returns the number of positives. */
function checkRanking(name: string, scores: ArrayLike<number>, positives: ArrayLike<boolean>): number {
  const n = scores.length;
  if (positives.length !== n) fail(`${name}: ${n} scores but ${positives.length} labels`);
  let nPos = 0;
  for (let i = 0; i < n; i++) {
    if (Number.isNaN(scores[i])) fail(`${name}: score ${i} is NaN`);
    if (positives[i]) nPos++;
  }
  if (nPos === 0) fail(`${name}: there are no positives`);
  return nPos;
}

/**
 * Visits the blocks of equal scores from the highest score down: `before` items rank above the
 * block, which holds `size` items of which `positives` are positive.
 */
function forEachTiedBlock(
  scores: ArrayLike<number>,
  positives: ArrayLike<boolean>,
  visit: (before: number, size: number, positivesInBlock: number, positivesBefore: number) => void,
): void {
  const n = scores.length;
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
  let positivesBefore = 0;
  for (let start = 0; start < n; ) {
    let end = start + 1;
    while (end < n && scores[order[end]] === scores[order[start]]) end++;
    let inBlock = 0;
    for (let r = start; r < end; r++) if (positives[order[r]]) inBlock++;
    visit(start, end - start, inBlock, positivesBefore);
    positivesBefore += inBlock;
    start = end;
  }
}

/**
 * Average precision of `scores` (higher = more likely positive) for finding `positives`: the mean,
 * over the positives, of the precision among the items ranked at or above each one.
 *
 * Ties: equal scores have no order of their own, so this is the *expected* average precision when
 * each block of equal scores is put in a uniformly random order (not scikit-learn's convention,
 * which treats a block as one threshold). It is computed exactly in O(n log n): the positive at
 * position j of a block of b items with q positives, after A items with P positives above it, has
 * expected precision (P + 1 + (j − 1)(q − 1)/(b − 1)) / (A + j) — precision is linear in the count
 * of block positives ahead of it, whose mean is hypergeometric — and position j holds a positive
 * with probability q/b.
 */
export function averagePrecision(scores: ArrayLike<number>, positives: ArrayLike<boolean>): number {
  const nPos = checkRanking('averagePrecision', scores, positives);
  let sum = 0;
  forEachTiedBlock(scores, positives, (before, size, q, positivesBefore) => {
    if (q === 0) return;
    const aheadPerPosition = size > 1 ? (q - 1) / (size - 1) : 0;
    let blockSum = 0;
    for (let j = 1; j <= size; j++)
      blockSum += (positivesBefore + 1 + (j - 1) * aheadPerPosition) / (before + j);
    sum += (q / size) * blockSum;
  });
  return sum / nPos;
}

/**
 * Fraction of positives among the `k` highest scores. A block of equal scores that straddles rank
 * k counts fractionally: if r of its b places fall within the top k and q of its items are
 * positive, it adds r·q/b positives — the expectation when the block is ordered at random.
 */
export function precisionAtK(scores: ArrayLike<number>, positives: ArrayLike<boolean>, k: number): number {
  checkRanking('precisionAtK', scores, positives);
  const n = scores.length;
  if (!Number.isInteger(k) || k < 1 || k > n)
    fail(`precisionAtK: k must be an integer from 1 to the ${n} scores, got ${k}`);
  let found = 0;
  forEachTiedBlock(scores, positives, (before, size, q) => {
    if (before >= k) return;
    const taken = Math.min(size, k - before);
    found += (taken * q) / size;
  });
  return found / k;
}
