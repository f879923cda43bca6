import { Conv2d, type ShapeWithImage } from '../layers/conv2d.js';
import { Dropout } from '../layers/dropout.js';
import { ReLU } from '../layers/elementwise.js';
import { GroupNorm } from '../layers/group-norm.js';
import { Linear } from '../layers/linear.js';
import { Flatten, GlobalAvgPool2d, MaxPool2d } from '../layers/pooling.js';
import { Residual } from '../layers/residual.js';
import { type Layer, named } from '../layers/types.js';
import { SoftmaxCrossEntropy } from '../losses/softmax-cross-entropy.js';
import { checkKnownKeys, checkNumber, fail } from '../util/errors.js';
import { type ModelOptions, Sequential } from './sequential.js';

export type CnnKind = 'lenet' | 'resnet' | 'resnet18';

export interface CnnOptions extends Omit<ModelOptions, 'input'> {
  /** One example's image, channels-first; the data's width is channels·height·width. */
  input: { channels: number; height: number; width: number };
  classes: number;
  kind: CnnKind;
  /**
   * Channels. lenet: of the first convolution (default 6; the second has ⌈8/3·width⌉, 16 for 6).
   * resnet: of the first stage (default 16), doubling at each later stage. resnet18: of its first
   * stage (default 64, as ResNet-18), doubling at each of the four.
   */
  width?: number;
  /** resnet: basic blocks per stage (default 1). */
  depth?: number;
  /** resnet: stages (default 3); each after the first halves height and width and doubles the channels. */
  stages?: number;
  /**
   * resnet, resnet18: groups of every GroupNorm, capped at its channels; must divide them. Default
   * 8 for resnet (2 channels per group at width 16) and 32 for resnet18 (GroupNorm(32, C)).
   */
  groups?: number;
  /** lenet: convolution kernel size (default 5). */
  kernel?: number;
  /** lenet: hidden widths of the classifier (default [120, 84]). */
  hidden?: number[];
  /** lenet: dropout probability after each hidden layer of the classifier (default 0: none). */
  dropout?: number;
}

const CNN_KEYS = [
  'input',
  'classes',
  'kind',
  'width',
  'depth',
  'stages',
  'groups',
  'kernel',
  'hidden',
  'dropout',
  'dtype',
  'seed',
  'kernels',
];

const ONLY: Record<string, CnnKind[]> = {
  depth: ['resnet'],
  stages: ['resnet'],
  groups: ['resnet', 'resnet18'],
  kernel: ['lenet'],
  hidden: ['lenet'],
  dropout: ['lenet'],
};

/**
 * A convolutional classifier (softmax cross-entropy over `classes`) for images
 * `input` = { channels, height, width }:
 *
 * - **lenet**: conv1 (k×k, "same" padding) → ReLU → 2×2 max pool → conv2 (k×k) → ReLU → 2×2 max
 *   pool → flatten → fc1 → ReLU → fc2 → ReLU → fc3. On 28×28 digits with the defaults this is
 *   LeNet-5's shape (6 and 16 channels, 400 → 120 → 84 → classes), with ReLU and max pooling.
 * - **resnet**: a CIFAR-style residual network: conv1 3×3 → GroupNorm → ReLU, then `stages`
 *   stages of `depth` basic blocks (conv 3×3 → GN → ReLU → conv 3×3 → GN, plus the input, then
 *   ReLU; a block that changes shape adds a strided 1×1 conv + GN on its shortcut), then global
 *   average pooling → flatten → fc.
 * - **resnet18**: torchvision's ResNet-18 with GroupNorm in place of BatchNorm (BatchNorm mixes the
 *   examples of a batch and is refused): conv1 7×7/2 → GN → ReLU → 3×3/2 max pool, four stages
 *   of two blocks (64, 128, 256, 512 channels), global average pooling, fc. Parameter names and
 *   shapes are torchvision's (conv1.weight, layer2.0.downsample.0.weight, fc.bias, …), so saved
 *   weights load into `torchvision.models.resnet18(num_classes=…, norm_layer=lambda c: nn.GroupNorm(32, c))`.
 *
 * Convolutions in the residual networks have no bias (a norm follows each) and torchvision's
 * initialisation (normal, std √(2/fan_out)); GroupNorm starts at γ = 1, β = 0. Everything else
 * uses PyTorch's default initialisation.
 */
export function cnn(options: CnnOptions): Sequential {
  checkKnownKeys('cnn', options, CNN_KEYS);
  const kind = options.kind;
  if (kind !== 'lenet' && kind !== 'resnet' && kind !== 'resnet18')
    fail(`cnn.kind must be "lenet", "resnet" or "resnet18", got ${JSON.stringify(kind)}`);
  for (const [key, kinds] of Object.entries(ONLY))
    if ((options as unknown as Record<string, unknown>)[key] !== undefined && !kinds.includes(kind))
      fail(`cnn.${key} applies to kind ${kinds.map((k) => `"${k}"`).join(' or ')}, not "${kind}"`);
  const input = options.input;
  if (typeof input !== 'object' || input === null)
    fail('cnn.input must be { channels, height, width }, e.g. { channels: 1, height: 28, width: 28 }');
  const channels = checkNumber('cnn.input.channels', input.channels, { min: 1, integer: true });
  const height = checkNumber('cnn.input.height', input.height, { min: 1, integer: true });
  const width = checkNumber('cnn.input.width', input.width, { min: 1, integer: true });
  const classes = checkNumber('cnn.classes', options.classes, { min: 2, integer: true });
  const image = { height, width };
  const layers =
    kind === 'lenet'
      ? lenet(options, channels, image, classes)
      : residualNetwork(options, channels, image, classes, kind === 'resnet18');
  return new Sequential(layers, new SoftmaxCrossEntropy(), {
    dtype: options.dtype,
    seed: options.seed,
    kernels: options.kernels,
    input: { width: channels * height * width },
  });
}

function lenet(
  options: CnnOptions,
  channels: number,
  image: { height: number; width: number },
  classes: number,
): Layer[] {
  const c1 = checkNumber('cnn.width', options.width ?? 6, { min: 1, integer: true });
  const c2 = Math.ceil((8 * c1) / 3);
  const k = checkNumber('cnn.kernel', options.kernel ?? 5, { min: 1, integer: true });
  const hidden = options.hidden ?? [120, 84];
  if (!Array.isArray(hidden)) fail('cnn.hidden must be an array of layer widths, e.g. [120, 84]');
  hidden.forEach((h, i) => {
    checkNumber(`cnn.hidden[${i}]`, h, { min: 1, integer: true });
  });
  const p = checkNumber('cnn.dropout', options.dropout ?? 0, { min: 0, max: 1 });
  const seed = options.seed ?? 0;
  const layers: Layer[] = [
    named('conv1', new Conv2d(channels, c1, k, { padding: Math.floor(k / 2), input: image })),
    ReLU(),
    new MaxPool2d(2),
    named('conv2', new Conv2d(c1, c2, k)),
    ReLU(),
    new MaxPool2d(2),
    new Flatten(),
  ];
  // The flattened width follows from the shapes: lay the convolutional part out once to read it.
  let shape: ShapeWithImage = { tokens: 1, width: channels * image.height * image.width };
  for (const layer of layers) shape = layer.outputShape(shape);
  let from = shape.width;
  hidden.forEach((h, i) => {
    layers.push(named(`fc${i + 1}`, new Linear(from, h)), ReLU());
    if (p > 0) layers.push(new Dropout(p, { seed: (Math.imul(seed, 0x9e3779b1) + i + 1) | 0 }));
    from = h;
  });
  layers.push(named(`fc${hidden.length + 1}`, new Linear(from, classes)));
  return layers;
}

function residualNetwork(
  options: CnnOptions,
  channels: number,
  image: { height: number; width: number },
  classes: number,
  resnet18: boolean,
): Layer[] {
  const base = checkNumber('cnn.width', options.width ?? (resnet18 ? 64 : 16), { min: 1, integer: true });
  const depth = resnet18 ? 2 : checkNumber('cnn.depth', options.depth ?? 1, { min: 1, integer: true });
  const stages = resnet18 ? 4 : checkNumber('cnn.stages', options.stages ?? 3, { min: 1, integer: true });
  const groups = checkNumber('cnn.groups', options.groups ?? (resnet18 ? 32 : 8), { min: 1, integer: true });
  const norm = (name: string, c: number) => {
    const g = Math.min(groups, c);
    if (c % g !== 0) fail(`cnn.groups: ${g} groups do not divide ${c} channels; choose groups dividing ${c}`);
    return named(name, new GroupNorm(g, c));
  };
  // torchvision: kaiming_normal_(mode="fan_out", nonlinearity="relu"), no bias (a norm follows).
  const conv = (name: string, cin: number, cout: number, k: number, stride = 1, extra = {}) =>
    named(
      name,
      new Conv2d(cin, cout, k, {
        stride,
        padding: Math.floor(k / 2),
        bias: false,
        init: { kind: 'normal', std: Math.sqrt(2 / (cout * k * k)) },
        ...extra,
      }),
    );
  const layers: Layer[] = resnet18
    ? [
        conv('conv1', channels, base, 7, 2, { input: image }),
        norm('bn1', base),
        ReLU(),
        new MaxPool2d(3, 2, 1),
      ]
    : [conv('conv1', channels, base, 3, 1, { input: image }), norm('bn1', base), ReLU()];
  let cin = base;
  for (let s = 0; s < stages; s++) {
    const cout = base * 2 ** s;
    for (let b = 0; b < depth; b++) {
      const stride = s > 0 && b === 0 ? 2 : 1;
      const main = [
        conv('conv1', cin, cout, 3, stride),
        norm('bn1', cout),
        ReLU(),
        conv('conv2', cout, cout, 3),
        norm('bn2', cout),
      ];
      const shortcut =
        stride !== 1 || cin !== cout
          ? [conv('downsample.0', cin, cout, 1, stride), norm('downsample.1', cout)]
          : [];
      layers.push(named(`layer${s + 1}.${b}`, new Residual(main, shortcut)), ReLU());
      cin = cout;
    }
  }
  layers.push(new GlobalAvgPool2d(), new Flatten(), named('fc', new Linear(cin, classes)));
  return layers;
}
