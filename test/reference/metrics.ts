// Slow exact reference for the ranking metrics (src/metrics.ts).

/** AUROC by counting every (positive, negative) pair: the positive scoring higher counts 1, a tie ½. */
export function aurocByPairs(scores: ArrayLike<number>, positives: ArrayLike<boolean>): number {
  let wins = 0;
  let pairs = 0;
  for (let i = 0; i < scores.length; i++) {
    if (!positives[i]) continue;
    for (let j = 0; j < scores.length; j++) {
      if (positives[j]) continue;
      pairs++;
      if (scores[i] > scores[j]) wins += 1;
      else if (scores[i] === scores[j]) wins += 0.5;
    }
  }
  return wins / pairs;
}
