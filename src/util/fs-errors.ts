// File-system errors in words. Node reports them as codes (EACCES, ENOSPC, …) with the syscall in
// the message; a user needs the path and the cause, once, in one line.
import { fail, InrunError } from './errors.js';

const CAUSES: Record<string, string> = {
  ENOENT: 'no such file or directory',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on device',
  EDQUOT: 'disk quota exceeded',
  EISDIR: 'is a directory',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'already exists',
  ENOTEMPTY: 'directory not empty',
  ELOOP: 'too many levels of symbolic links',
  ENAMETOOLONG: 'file name too long',
  EMFILE: 'too many open files',
  ENFILE: 'too many open files in the system',
  EBUSY: 'resource busy',
  EIO: 'input/output error',
  EFBIG: 'file too large',
  EXDEV: 'cannot move across file systems',
  EINVAL: 'invalid argument',
};

/** The error's code, when it is a Node system error (ENOENT, ENOSPC, …). */
export function errorCode(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** True for errors of the operating system about files (as opposed to bugs). */
export function isFileSystemError(error: unknown): boolean {
  const code = errorCode(error);
  if (code === undefined || error instanceof InrunError) return false;
  return /^E[A-Z]+$/.test(code) || code === 'ERR_FS_FILE_TOO_LARGE';
}

/** "permission denied", "no space left on device", …; Node's own words for rare codes. */
export function fileErrorCause(error: unknown): string {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === undefined) return message;
  if (code === 'ERR_FS_FILE_TOO_LARGE') return 'file too large to read (over 2 GiB)';
  // Node's message reads "ECODE: words, syscall 'path'": keep the words.
  return CAUSES[code] ?? /^E[A-Z]+: ([^,]+)/.exec(message)?.[1] ?? 'system error';
}

/**
 * Throws an InrunError "<path>: cannot <action> (<cause>)" for a file-system error; rethrows
 * anything else (a bug stays a bug).
 */
export function failFileError(error: unknown, path: string, action: string): never {
  if (!isFileSystemError(error)) throw error;
  return fail(`${path}: cannot ${action} (${fileErrorCause(error)})`);
}
