import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { atomicTempName, isAtomicTempName, writeFileAtomic } from '../../src/io/atomic.js';

const dirs: string[] = [];
after(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'inrun-atomic-'));
  dirs.push(dir);
  return dir;
}

test('writeFileAtomic writes a new file and leaves no temporary file behind', async () => {
  const dir = await tempDir();
  const path = join(dir, 'values.csv');
  await writeFileAtomic(path, 'a,b\n1,2\n');
  assert.equal(await readFile(path, 'utf8'), 'a,b\n1,2\n');
  assert.deepEqual(await readdir(dir), ['values.csv']);
});

test('writeFileAtomic replaces an existing file, with text or bytes', async () => {
  const dir = await tempDir();
  const path = join(dir, 'out.bin');
  await writeFile(path, 'old contents that are longer than the new ones');
  await writeFileAtomic(path, new Uint8Array([1, 2, 3]));
  assert.deepEqual([...(await readFile(path))], [1, 2, 3]);
  await writeFileAtomic(path, 'new');
  assert.equal(await readFile(path, 'utf8'), 'new');
  assert.deepEqual(await readdir(dir), ['out.bin']);
});

test('writeFileAtomic fails cleanly, removing its temporary file', async () => {
  const dir = await tempDir();
  // The target is a non-empty directory: the rename fails after the temporary file was written.
  const target = join(dir, 'taken');
  await writeFileAtomic(join(dir, 'keep.txt'), 'x');
  await mkdir(join(target, 'inside'), { recursive: true });
  await assert.rejects(writeFileAtomic(target, 'data'));
  assert.deepEqual((await readdir(dir)).sort(), ['keep.txt', 'taken']);
  // A missing folder fails before any file is created.
  await assert.rejects(writeFileAtomic(join(dir, 'missing', 'f.txt'), 'data'), { code: 'ENOENT' });
});

test('isAtomicTempName knows the temporary names writeFileAtomic makes, and only those', () => {
  for (const name of ['manifest.json', 'values.csv', 'a.b.c', '.hidden']) {
    const temp = atomicTempName(name);
    assert.ok(isAtomicTempName(temp), temp);
    assert.ok(temp.startsWith(`.${name}.${process.pid}.`));
  }
  for (const name of [
    'manifest.json',
    '.manifest.json.tmp',
    '.m.1.0123456789ab.tmp.x',
    '.m.1.0123456789AB.tmp',
  ])
    assert.equal(isAtomicTempName(name), false, name);
});
