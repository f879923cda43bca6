// safetensors: an 8-byte little-endian header length, a JSON header
// { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { string: string } },
// then the raw little-endian tensor bytes. Readable by PyTorch / Hugging Face `safetensors`.
// Encoding and decoding only, without Node imports (a browser writes the same files); reading
// and writing files is ./safetensors.ts.
import type { FloatArray } from '../kernels/types.js';
import type { Sequential } from '../models/sequential.js';
import { fail } from '../util/errors.js';

export interface NamedTensor {
  name: string;
  shape: number[];
  data: FloatArray;
}

const DTYPES = { F32: Float32Array, F64: Float64Array } as const;
type SafetensorsDType = keyof typeof DTYPES;

/** Encodes tensors (and string metadata) as one safetensors file image. */
export function encodeSafetensors(tensors: NamedTensor[], metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  for (const t of tensors) {
    if (t.name in header) fail(`safetensors: duplicate tensor name "${t.name}"`);
    const size = t.shape.reduce((a, b) => a * b, 1);
    if (size !== t.data.length)
      fail(`safetensors: tensor "${t.name}" has ${t.data.length} values but shape [${t.shape}]`);
    header[t.name] = {
      dtype: t.data instanceof Float32Array ? 'F32' : 'F64',
      shape: t.shape,
      data_offsets: [offset, offset + t.data.byteLength],
    };
    offset += t.data.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  // Pad the header with spaces so the data starts 8-byte aligned (as the reference writer does).
  const headerBytes = new Uint8Array(json.length + ((8 - ((8 + json.length) % 8)) % 8)).fill(0x20);
  headerBytes.set(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let cursor = 8 + headerBytes.length;
  for (const t of tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), cursor);
    cursor += t.data.byteLength;
  }
  return out;
}

/** The reference implementation's limit on the header; a larger one is not a safetensors file. */
const MAX_HEADER_BYTES = 100_000_000;

interface TensorEntry {
  name: string;
  Type: (typeof DTYPES)[SafetensorsDType];
  shape: number[];
  count: number;
  begin: number;
  end: number;
}

/**
 * Decodes a safetensors image; every structural problem is reported with the file name. Strict as
 * the format requires: the tensors' byte ranges must tile the data section exactly (no overlap,
 * no hole, nothing after the last tensor), so a file cannot smuggle in bytes no tensor accounts for.
 */
export function decodeSafetensors(
  bytes: Uint8Array,
  where: string,
): { tensors: NamedTensor[]; metadata: Record<string, string> } {
  if (bytes.length < 8)
    fail(`${where}: not a safetensors file (${bytes.length} bytes, shorter than its 8-byte header length)`);
  const declared = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
  if (declared > BigInt(bytes.length - 8))
    fail(`${where}: truncated safetensors file (header says ${declared} bytes, ${bytes.length - 8} present)`);
  const headerLength = Number(declared);
  if (headerLength > MAX_HEADER_BYTES)
    fail(`${where}: the safetensors header is ${headerLength} bytes, more than the format's limit of 100 MB`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + headerLength));
  } catch {
    return fail(`${where}: the safetensors header is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    return fail(`${where}: the safetensors header is not valid JSON`);
  }
  if (!text.startsWith('{') || typeof header !== 'object' || header === null || Array.isArray(header))
    fail(`${where}: the safetensors header is not a JSON object`);
  const dataStart = 8 + headerLength;
  const dataLength = bytes.length - dataStart;
  const metadata = readMetadata((header as Record<string, unknown>).__metadata__, where);
  const entries: TensorEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    entries.push(readEntry(name, info, where));
  }
  checkLayout(entries, dataLength, where);
  // Header order, as written; the layout check sorted a copy.
  const tensors = entries.map(({ name, Type, shape, count, begin, end }) => {
    // Copy out so the tensor is aligned and independent of the file buffer.
    const data = new Type(count);
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + begin, dataStart + end));
    return { name, shape, data };
  });
  return { tensors, metadata };
}

function readMetadata(value: unknown, where: string): Record<string, string> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    fail(`${where}: the safetensors "__metadata__" is not a JSON object`);
  for (const [key, v] of Object.entries(value))
    if (typeof v !== 'string')
      fail(`${where}: the safetensors "__metadata__" entry "${key}" is not a string`);
  return value as Record<string, string>;
}

function readEntry(name: string, info: unknown, where: string): TensorEntry {
  if (typeof info !== 'object' || info === null || Array.isArray(info))
    fail(`${where}: tensor "${name}" is not described by a JSON object`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (!(typeof dtype === 'string' && Object.hasOwn(DTYPES, dtype)))
    fail(`${where}: tensor "${name}" has dtype ${JSON.stringify(dtype)}; inrun reads F32 and F64`);
  if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0))
    fail(`${where}: tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0)
  )
    fail(`${where}: tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
  const [begin, end] = offsets as [number, number];
  if (end < begin)
    fail(
      `${where}: tensor "${name}" has data_offsets out of order: it ends (${end}) before it begins (${begin})`,
    );
  const Type = DTYPES[dtype as SafetensorsDType];
  const count = (shape as number[]).reduce((a, b) => a * b, 1);
  const needed = count * Type.BYTES_PER_ELEMENT;
  if (end - begin !== needed)
    fail(
      `${where}: tensor "${name}" has ${end - begin} bytes but shape [${shape}] of ${dtype} needs ${needed}`,
    );
  return { name, Type, shape: shape as number[], count, begin, end };
}

/** The byte ranges, sorted, must follow each other from 0 to the end of the data exactly. */
function checkLayout(entries: TensorEntry[], dataLength: number, where: string): void {
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: TensorEntry | null = null;
  for (const t of sorted) {
    if (t.end > dataLength)
      fail(`${where}: truncated: tensor "${t.name}" ends at byte ${t.end} of ${dataLength}`);
    if (t.begin < cursor)
      fail(
        `${where}: tensor "${t.name}" (bytes ${t.begin}–${t.end}) overlaps tensor "${previous!.name}" (bytes ${previous!.begin}–${previous!.end})`,
      );
    if (t.begin > cursor)
      fail(
        `${where}: bytes ${cursor}–${t.begin} of the data belong to no tensor (a hole ${previous ? `after tensor "${previous.name}"` : 'at the start'}, before tensor "${t.name}")`,
      );
    cursor = t.end;
    previous = t;
  }
  if (cursor < dataLength)
    fail(
      `${where}: ${dataLength - cursor} bytes after ${previous ? `the last tensor "${previous.name}"` : 'the header (no tensor)'} belong to no tensor`,
    );
}

/**
 * The model's parameters as named tensors, one per slot (tied parameters once), in layout order.
 * Names follow the model's layer names, e.g. "h.0.attn.c_attn.weight"; Linear weights are
 * [out, in] as in PyTorch's nn.Linear.
 */
export function modelTensors(model: Sequential, params: FloatArray = model.params): NamedTensor[] {
  return model.slots.map((slot) => ({
    name: slot.name,
    shape: slot.shape,
    data: params.subarray(slot.offset, slot.offset + slot.size),
  }));
}

/** Copies named tensors into the model's parameters; names and shapes must match exactly. */
export function loadModelTensors(model: Sequential, tensors: NamedTensor[], where: string): void {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const needed = new Set(model.slots.map((slot) => slot.name));
  const extra = tensors.filter((t) => !needed.has(t.name)).map((t) => t.name);
  if (extra.length > 0) fail(`${where}: tensors the model does not have: ${extra.join(', ')}`);
  for (const slot of model.slots) {
    const t = byName.get(slot.name);
    if (!t) fail(`${where}: no tensor "${slot.name}" (the model needs: ${[...needed].join(', ')})`);
    if (t.shape.join() !== slot.shape.join())
      fail(`${where}: tensor "${slot.name}" has shape [${t.shape}], the model needs [${slot.shape}]`);
    for (let e = 0; e < t.data.length; e++) {
      if (!Number.isFinite(t.data[e]))
        fail(`${where}: tensor "${slot.name}" holds a non-finite value at index ${e}`);
    }
  }
  // Only after every check passed: the model is never left half-loaded.
  for (const slot of model.slots) model.params.set(byName.get(slot.name)!.data, slot.offset);
}
