import type { Batch, Dataset, ExampleId } from '../data/dataset.js';
import type { DType, KernelOps } from '../kernels/types.js';

/** The examples of `base` at `indices`, in that order, as a dataset of their own (no copy). */
export class SubsetDataset implements Dataset {
  readonly name: string;
  readonly size: number;
  readonly example: { tokens: number; width: number };

  constructor(
    private readonly base: Dataset,
    private readonly indices: ArrayLike<number>,
  ) {
    this.name = base.name;
    this.size = indices.length;
    this.example = base.example;
  }

  id(index: number): ExampleId {
    return this.base.id(this.indices[index]);
  }

  group(index: number): string | undefined {
    return this.base.group(this.indices[index]);
  }

  batch(indices: ArrayLike<number>, dtype: DType, into?: Batch, kernels?: KernelOps): Batch {
    return this.base.batch(
      Int32Array.from(indices, (i) => this.indices[i]),
      dtype,
      into,
      kernels,
    );
  }
}
