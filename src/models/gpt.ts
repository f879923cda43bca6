// A GPT-2-style language model in one file: config, blocks, weight tying, initialisation.
// The valuation machinery stays out of here: every layer brings its own ghost routes.
import { CausalSelfAttention } from '../layers/attention.js';
import { GELU } from '../layers/elementwise.js';
import { PositionalEmbedding, TokenEmbedding } from '../layers/embedding.js';
import { LayerNorm, RMSNorm } from '../layers/layer-norm.js';
import { Linear } from '../layers/linear.js';
import { Residual } from '../layers/residual.js';
import { type Layer, named } from '../layers/types.js';
import { SoftmaxCrossEntropy } from '../losses/softmax-cross-entropy.js';
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';
import { type ModelOptions, Sequential } from './sequential.js';

export interface GptConfig extends Omit<ModelOptions, 'input'> {
  vocabSize: number;
  /** Tokens per training sequence (the context length). */
  context: number;
  layers: number;
  heads: number;
  /** Embedding width d (divisible by heads). */
  width: number;
  /** Share the token embedding with the output head (GPT-2 does). Default true. */
  tieWeights?: boolean;
  norm?: 'layernorm' | 'rmsnorm';
  /** Hidden width of each MLP as a multiple of d. Default 4. */
  mlpRatio?: number;
}

const GPT_KEYS = [
  'vocabSize',
  'context',
  'layers',
  'heads',
  'width',
  'tieWeights',
  'norm',
  'mlpRatio',
  'dtype',
  'seed',
  'kernels',
];

/**
 *   ids → wte + wpe → [x + attn(ln_1 x); x + mlp(ln_2 x)] × layers → ln_f → lm_head → logits
 *
 * Initialisation as GPT-2/nanoGPT: weights normal(0, 0.02), biases 0, the two residual
 * projections of each block normal(0, 0.02/√(2·layers)), norms γ = 1, β = 0. The loss is token
 * cross-entropy averaged over each sequence's unmasked tokens (targets −1 are padding).
 */
export function gpt(config: GptConfig): Sequential {
  checkKnownKeys('gpt', config, GPT_KEYS);
  const vocab = checkNumber('gpt.vocabSize', config.vocabSize, { min: 2, integer: true });
  const context = checkNumber('gpt.context', config.context, { min: 1, integer: true });
  const depth = checkNumber('gpt.layers', config.layers, { min: 1, integer: true });
  const heads = checkNumber('gpt.heads', config.heads, { min: 1, integer: true });
  const d = checkNumber('gpt.width', config.width, { min: 1, integer: true });
  if (d % heads !== 0) fail(`gpt.width (${d}) must be divisible by gpt.heads (${heads})`);
  const hidden = d * checkNumber('gpt.mlpRatio', config.mlpRatio ?? 4, { min: 1, integer: true });
  const normKind = config.norm ?? 'layernorm';
  if (normKind !== 'layernorm' && normKind !== 'rmsnorm')
    fail(`gpt.norm must be "layernorm" or "rmsnorm", got ${JSON.stringify(normKind)}`);
  const norm = (name: string) => named(name, normKind === 'layernorm' ? new LayerNorm(d) : new RMSNorm(d));
  const weights = { kind: 'normal', std: 0.02 } as const;
  const residualWeights = { kind: 'normal', std: 0.02 / Math.sqrt(2 * depth) } as const;

  const wte = named('wte', new TokenEmbedding(vocab, d, 0.02));
  const layers: Layer[] = [wte, named('wpe', new PositionalEmbedding(context, d, 0.02))];
  for (let b = 0; b < depth; b++) {
    layers.push(
      named(
        `h.${b}.attn`,
        new Residual([
          norm('ln_1'),
          named('c_attn', new Linear(d, 3 * d, { init: weights })),
          named('attention', new CausalSelfAttention(heads)),
          named('c_proj', new Linear(d, d, { init: residualWeights })),
        ]),
      ),
      named(
        `h.${b}.mlp`,
        new Residual([
          norm('ln_2'),
          named('c_fc', new Linear(d, hidden, { init: weights })),
          named('gelu', GELU()),
          named('c_proj', new Linear(hidden, d, { init: residualWeights })),
        ]),
      ),
    );
  }
  layers.push(norm('ln_f'));
  const tied = config.tieWeights ?? true;
  layers.push(
    named(
      'lm_head',
      new Linear(d, vocab, {
        bias: false,
        init: weights,
        tiedWeight: tied ? { layer: wte, index: 0 } : undefined,
      }),
    ),
  );
  return new Sequential(layers, new SoftmaxCrossEntropy({ tokenReduction: 'mean' }), {
    dtype: config.dtype,
    seed: config.seed,
    kernels: config.kernels,
    input: { tokens: context, width: 1 },
  });
}
