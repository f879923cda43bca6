// safetensors files (the format itself: ./safetensors-format.ts).
import { readFile } from 'node:fs/promises';
import { failFileError } from '../util/fs-errors.js';
import { writeFileAtomic } from './atomic.js';
import { decodeSafetensors, encodeSafetensors, type NamedTensor } from './safetensors-format.js';

export {
  decodeSafetensors,
  encodeSafetensors,
  loadModelTensors,
  modelTensors,
  type NamedTensor,
} from './safetensors-format.js';

export async function writeSafetensors(
  path: string,
  tensors: NamedTensor[],
  metadata: Record<string, string> = {},
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}

export async function readSafetensors(
  path: string,
): Promise<{ tensors: NamedTensor[]; metadata: Record<string, string> }> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    return failFileError(error, path, 'read');
  }
  return decodeSafetensors(bytes, path);
}
