// Training, validation and test sets of handwritten digits, with a seeded fraction of training
// labels flipped, from the images of each class — read from the `mnist` package's files in Node
// (./digits.ts) or from the web page's bundled asset (./digits-asset.ts). No Node imports.
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';
import { Rng } from '../util/rng.js';
import { TensorDataset } from './dataset.js';

export const DIGIT_CLASSES = 10;
export const DIGIT_SIDE = 28;
export const DIGIT_PIXELS = DIGIT_SIDE * DIGIT_SIDE;

export interface LoadDigitsOptions {
  /** Training images per class (default 200 → 2,000 training images). */
  trainPerClass?: number;
  /** Validation images per class (default 50 → 500), taken after the training ones. */
  validationPerClass?: number;
  /** Test images per class (default 0: no test set), taken after the validation ones. */
  testPerClass?: number;
  /** Fraction of training labels to flip to a different, uniformly drawn class (default 0.1). */
  flipFraction?: number;
  /** Seed of which labels are flipped and to what (default 0). */
  seed?: number;
}

const OPTION_KEYS = ['trainPerClass', 'validationPerClass', 'testPerClass', 'flipFraction', 'seed'];

export interface Digits {
  /** Training images; labels are the observed (possibly flipped) ones; groups are those labels as strings. */
  train: TensorDataset;
  /** Validation images with their true labels. */
  validation: TensorDataset;
  /** Test images with their true labels; null unless testPerClass was given. */
  test: TensorDataset | null;
  /** Per training index: whether its label was flipped. */
  flipped: boolean[];
  /** Per training index: the true label. */
  originalLabels: Int32Array;
}

/**
 * Training and validation sets of bundled digits. For class c, images 0..trainPerClass−1 train and
 * the next validationPerClass validate (disjoint by construction); classes are interleaved (image k
 * of class 0, of class 1, …). Ids are "digit-<c>-<k>". Exactly round(flipFraction · nTrain) training
 * labels, chosen with the seeded generator, get a different class drawn uniformly from the other nine.
 */
export function digitsFromImages(images: Float32Array[], options: LoadDigitsOptions = {}): Digits {
  checkKnownKeys('loadDigits', options, OPTION_KEYS);
  const trainPerClass = checkNumber('trainPerClass', options.trainPerClass ?? 200, { min: 1, integer: true });
  const validationPerClass = checkNumber('validationPerClass', options.validationPerClass ?? 50, {
    min: 1,
    integer: true,
  });
  const testPerClass = checkNumber('testPerClass', options.testPerClass ?? 0, { min: 0, integer: true });
  const flipFraction = checkNumber('flipFraction', options.flipFraction ?? 0.1, { min: 0, max: 1 });
  const seed = checkNumber('seed', options.seed ?? 0, { integer: true });

  if (images.length !== DIGIT_CLASSES)
    fail(`the digits need images of ${DIGIT_CLASSES} classes, got ${images.length}`);
  const available = Math.min(...images.map((pixels) => pixels.length / DIGIT_PIXELS));
  if (trainPerClass > available)
    fail(`trainPerClass (${trainPerClass}) is larger than the ${available} images available per class`);
  if (trainPerClass + validationPerClass > available)
    fail(
      `trainPerClass + validationPerClass (${trainPerClass} + ${validationPerClass}) is larger than the ` +
        `${available} images available per class; lower validationPerClass to at most ${available - trainPerClass}`,
    );
  if (trainPerClass + validationPerClass + testPerClass > available)
    fail(
      `trainPerClass + validationPerClass + testPerClass (${trainPerClass} + ${validationPerClass} + ${testPerClass}) is larger than the ` +
        `${available} images available per class; lower testPerClass to at most ${available - trainPerClass - validationPerClass}`,
    );

  const take = (first: number, perClass: number) => {
    const n = perClass * DIGIT_CLASSES;
    const features = new Float32Array(n * DIGIT_PIXELS);
    const labels = new Int32Array(n);
    const ids: string[] = [];
    for (let k = 0; k < perClass; k++) {
      for (let c = 0; c < DIGIT_CLASSES; c++) {
        const row = k * DIGIT_CLASSES + c;
        const image = first + k;
        features.set(
          images[c].subarray(image * DIGIT_PIXELS, (image + 1) * DIGIT_PIXELS),
          row * DIGIT_PIXELS,
        );
        labels[row] = c;
        ids.push(`digit-${c}-${image}`);
      }
    }
    return { features, labels, ids };
  };

  const train = take(0, trainPerClass);
  const nTrain = train.labels.length;
  const originalLabels = train.labels.slice();
  const observed = train.labels;
  const flipped: boolean[] = new Array(nTrain).fill(false);
  const flips = Math.round(flipFraction * nTrain);
  const rng = new Rng(seed);
  const order = rng.permutation(nTrain);
  for (let f = 0; f < flips; f++) {
    const i = order[f];
    observed[i] = (originalLabels[i] + 1 + rng.int(DIGIT_CLASSES - 1)) % DIGIT_CLASSES;
    flipped[i] = true;
  }

  const validation = take(trainPerClass, validationPerClass);
  const test = testPerClass > 0 ? take(trainPerClass + validationPerClass, testPerClass) : null;
  return {
    train: new TensorDataset({
      name: 'digits training data',
      features: train.features,
      width: DIGIT_PIXELS,
      labels: observed,
      labelKind: 'class',
      ids: train.ids,
      groups: Array.from(observed, String),
    }),
    validation: new TensorDataset({
      name: 'digits validation data',
      features: validation.features,
      width: DIGIT_PIXELS,
      labels: validation.labels,
      labelKind: 'class',
      ids: validation.ids,
      groups: Array.from(validation.labels, String),
    }),
    test: test
      ? new TensorDataset({
          name: 'digits test data',
          features: test.features,
          width: DIGIT_PIXELS,
          labels: test.labels,
          labelKind: 'class',
          ids: test.ids,
          groups: Array.from(test.labels, String),
        })
      : null,
    flipped,
    originalLabels,
  };
}
