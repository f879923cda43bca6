// Image folders: one sub-folder per class, the usual image-folder layout (`train/cat/001.png`),
// read into channels-first pixel rows in [0, 1]. PNG through pngjs and JPEG through jpeg-js, both
// pure JavaScript, so the same code runs in the browser.
import { createHash } from 'node:crypto';
import { copyFile, link, mkdir, readdir, readFile, rename, rm } from 'node:fs/promises';
import { dirname, extname, join, relative } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { fail } from '../../util/errors.js';
import { failFileError } from '../../util/fs-errors.js';
import { displayPath, type Table, type TableRow } from './table.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

/** One decoded image: RGBA bytes, row-major. */
export interface DecodedImage {
  width: number;
  height: number;
  rgba: Uint8Array;
}

export interface ImageSet {
  /** Each image's file. */
  paths: string[];
  /** sha256 over every image's id and bytes, in order: the folder's fingerprint. */
  sha256: string;
  /** Σ of the files' sizes. */
  bytes: number;
  /** n × channels·height·width pixels in [0, 1], channels-first per image ([C, H, W]). */
  features: Float32Array;
  labels: Int32Array;
  /** The class (sub-folder) names, sorted; label k is classNames[k]. */
  classNames: string[];
  /** Each image's path relative to the folder, with "/" separators: its id. */
  ids: string[];
  channels: 1 | 3;
  height: number;
  width: number;
}

export interface ReadImagesOptions {
  /**
   * 1 (grey) or 3 (RGB). Default: 1 when every image is grey (R = G = B everywhere), else 3. Colour
   * images read as grey are converted by luminance (0.299 R + 0.587 G + 0.114 B); alpha is ignored.
   */
  channels?: 1 | 3;
  /** Class names to use, in label order (e.g. the training folder's, for a validation folder). */
  classNames?: string[];
}

/** Decodes a PNG or JPEG file's bytes; `where` names the file in errors. */
export function decodeImage(bytes: Uint8Array, where: string): DecodedImage {
  const ext = extname(where).toLowerCase();
  try {
    if (ext === '.png') {
      const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return { width: png.width, height: png.height, rgba: new Uint8Array(png.data) };
    }
    if (ext === '.jpg' || ext === '.jpeg') {
      const image = jpeg.decode(bytes, { useTArray: true, formatAsRGBA: true, maxMemoryUsageInMB: 512 });
      return { width: image.width, height: image.height, rgba: image.data };
    }
  } catch (error) {
    return fail(`${where}: not a readable ${ext.slice(1).toUpperCase()} image (${(error as Error).message})`);
  }
  return fail(`${where}: not an image inrun reads (${IMAGE_EXTENSIONS.join(', ')})`);
}

/** The images of a class folder, sorted by name; hidden files are skipped, other files are errors. */
async function listImages(dir: string, root: string): Promise<string[]> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (error) {
    return failFileError(error, displayPath(dir), 'read the image folder');
  }
  const files: string[] = [];
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (entry.name.startsWith('.')) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory())
      fail(
        `${displayPath(path)}: a folder inside a class folder; an image folder holds one folder per class (${displayPath(root)}/<class>/<image>), and images directly in it`,
      );
    if (!IMAGE_EXTENSIONS.includes(extname(entry.name).toLowerCase()))
      fail(
        `${displayPath(path)}: not an image inrun reads (${IMAGE_EXTENSIONS.join(', ')}); move it out of the image folder`,
      );
    files.push(path);
  }
  return files;
}

/**
 * Reads an image folder: every sub-folder is a class (sorted by name, unless `classNames` fixes
 * them), every PNG/JPEG in it an example. All images must have one size: an image of another size
 * is an error naming it and both sizes (resize them beforehand; inrun does not guess a policy).
 */
export async function readImageFolder(root: string, options: ReadImagesOptions = {}): Promise<ImageSet> {
  let entries: import('node:fs').Dirent[];
  try {
    entries = await readdir(root, { withFileTypes: true });
  } catch (error) {
    return failFileError(error, displayPath(root), 'read the image folder');
  }
  const folders = entries
    .filter((e) => !e.name.startsWith('.'))
    .map((e) => {
      if (!e.isDirectory())
        fail(
          `${displayPath(join(root, e.name))}: a file at the top of an image folder; put each image in the folder of its class (${displayPath(root)}/<class>/<image>)`,
        );
      return e.name;
    })
    .sort();
  if (folders.length === 0)
    fail(`${displayPath(root)}: no class folders; an image folder holds one folder per class`);
  const classNames = options.classNames ?? folders;
  const labelOf = new Map(classNames.map((name, k) => [name, k]));
  for (const folder of folders)
    if (!labelOf.has(folder))
      fail(
        `${displayPath(join(root, folder))}: class "${folder}" is not among the training classes (${classNames.join(', ')})`,
      );

  const images: { id: string; label: number; image: DecodedImage; path: string }[] = [];
  const hash = createHash('sha256');
  let totalBytes = 0;
  for (const folder of folders) {
    for (const path of await listImages(join(root, folder), root)) {
      let bytes: Uint8Array;
      try {
        bytes = await readFile(path);
      } catch (error) {
        return failFileError(error, displayPath(path), 'read the image');
      }
      const image = decodeImage(bytes, displayPath(path));
      const id = relative(root, path).split('\\').join('/');
      hash.update(`${id}\0${bytes.length}\0`);
      hash.update(bytes);
      totalBytes += bytes.length;
      const first = images[0];
      if (first && (image.width !== first.image.width || image.height !== first.image.height))
        fail(
          `${displayPath(path)}: ${image.width}×${image.height} pixels, but ${displayPath(first.path)} is ${first.image.width}×${first.image.height}; all images must have one size (resize them first)`,
        );
      images.push({
        id,
        label: labelOf.get(folder)!,
        image,
        path,
      });
    }
  }
  if (images.length === 0) fail(`${displayPath(root)}: the class folders hold no images`);

  const { width, height } = images[0].image;
  const grey = images.every(({ image }) => isGrey(image.rgba));
  const channels = options.channels ?? (grey ? 1 : 3);
  if (channels !== 1 && channels !== 3) fail(`image channels must be 1 or 3, got ${channels}`);
  const plane = width * height;
  const features = new Float32Array(images.length * channels * plane);
  images.forEach(({ image }, i) => {
    const base = i * channels * plane;
    const px = image.rgba;
    for (let p = 0; p < plane; p++) {
      const r = px[4 * p];
      const g = px[4 * p + 1];
      const b = px[4 * p + 2];
      if (channels === 1)
        features[base + p] = (r === g && g === b ? r : 0.299 * r + 0.587 * g + 0.114 * b) / 255;
      else {
        features[base + p] = r / 255;
        features[base + plane + p] = g / 255;
        features[base + 2 * plane + p] = b / 255;
      }
    }
  });
  return {
    paths: images.map((x) => x.path),
    sha256: hash.digest('hex'),
    bytes: totalBytes,
    features,
    labels: Int32Array.from(images, (x) => x.label),
    classNames,
    ids: images.map((x) => x.id),
    channels,
    height,
    width,
  };
}

function isGrey(rgba: Uint8Array): boolean {
  for (let p = 0; p < rgba.length; p += 4)
    if (rgba[p] !== rgba[p + 1] || rgba[p] !== rgba[p + 2]) return false;
  return true;
}

/** The pixel columns of an image table: pixel_k over the channels-first [C, H, W] values. */
export function pixelColumns(count: number): string[] {
  return Array.from({ length: count }, (_, k) => `pixel_${k}`);
}

/**
 * An image folder as a table, so the whole tabular pipeline (labels by name, splits,
 * standardisation, curation) applies: columns `id` (the image's path in the folder), `label` (its
 * class folder) and `pixel_0 … pixel_{C·H·W−1}` (channels-first, in [0, 1]); `image` gives the shape.
 */
export async function readImageTable(root: string, options: ReadImagesOptions = {}): Promise<Table> {
  const set = await readImageFolder(root, options);
  const per = set.channels * set.height * set.width;
  const columns = ['id', 'label', ...pixelColumns(per)];
  const rows: TableRow[] = set.ids.map((id, i) => {
    const cells: Record<string, unknown> = { id, label: set.classNames[set.labels[i]] };
    for (let k = 0; k < per; k++) cells[columns[k + 2]] = set.features[i * per + k];
    return { cells, index: i, line: i + 1, source: set.paths[i] };
  });
  return {
    path: root,
    format: 'images',
    columns,
    rows,
    sha256: set.sha256,
    bytes: set.bytes,
    image: { channels: set.channels, height: set.height, width: set.width },
  };
}

/**
 * Writes the images of `rows` (rows of readImageTable(root)) as a new image folder `out` with the
 * same class folders: hard links where the file system allows, copies otherwise. Built in a
 * temporary folder and renamed into place, so `out` is complete or absent.
 */
export async function writeImageFolderLike(root: string, rows: TableRow[], out: string): Promise<void> {
  const temporary = `${out}.tmp-${process.pid}`;
  await rm(temporary, { recursive: true, force: true });
  try {
    for (const row of rows) {
      const id = String(row.cells.id);
      const target = join(temporary, id);
      await mkdir(dirname(target), { recursive: true });
      await link(join(root, id), target).catch(() => copyFile(join(root, id), target));
    }
    await rm(out, { recursive: true, force: true });
    await rename(temporary, out);
  } catch (error) {
    await rm(temporary, { recursive: true, force: true }).catch(() => {});
    failFileError(error, displayPath(out), 'write the image folder');
  }
}
