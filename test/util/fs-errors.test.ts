import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import { InrunError } from '../../src/util/errors.js';
import { failFileError, fileErrorCause, isFileSystemError } from '../../src/util/fs-errors.js';

function systemError(code: string, message: string): NodeJS.ErrnoException {
  return Object.assign(new Error(message), { code });
}

test('file-system errors are told in words, never as a bare code', async () => {
  const missing = await readFile('/no/such/inrun/file').catch((e: unknown) => e);
  assert.equal(fileErrorCause(missing), 'no such file or directory');
  assert.equal(
    fileErrorCause(systemError('ENOSPC', 'ENOSPC: no space left on device, write')),
    'no space left on device',
  );
  // A code the table does not know keeps Node's own words, without the code.
  assert.equal(
    fileErrorCause(systemError('ETXTBSY', "ETXTBSY: text file is busy, open '/x'")),
    'text file is busy',
  );
  assert.equal(
    fileErrorCause(systemError('ERR_FS_FILE_TOO_LARGE', 'File size is greater than 2 GiB')),
    'file too large to read (over 2 GiB)',
  );
});

test('failFileError turns system errors into one-line InrunErrors and rethrows bugs', () => {
  assert.throws(
    () => failFileError(systemError('EROFS', 'EROFS: read-only file system'), '/mnt/run', 'write'),
    (e: unknown) => e instanceof InrunError && e.message === '/mnt/run: cannot write (read-only file system)',
  );
  const bug = new TypeError('x is undefined');
  assert.throws(
    () => failFileError(bug, '/mnt/run', 'write'),
    (e: unknown) => e === bug,
  );
  assert.equal(isFileSystemError(new InrunError('already in words')), false);
});
