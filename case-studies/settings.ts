// What the language-model case studies share: the docs' GPT training settings, with a warm-up
// that keeps Adam's first steps (and so the values' Taylor expansion) in check.

/** AdamW 3·10⁻³ with global-norm clipping, a 10-step warm-up and cosine decay to a tenth. */
export const CASE_STUDY_OPTIMIZER = {
  kind: 'adamw',
  lr: 0.003,
  clipNorm: 1,
  schedule: { kind: 'cosine', warmupSteps: 10, minFactor: 0.1 },
};
