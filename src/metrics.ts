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
