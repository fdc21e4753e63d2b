import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The ktrial checkout: compiled code runs from dist/harness/common/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const repoPath = (...p: string[]) => join(REPO_ROOT, ...p);

/** Whether a source location is a URL (scheme://...) rather than a local path. */
export const isUrl = (location: string): boolean => /^[a-z]+:\/\//.test(location);

/** A URL as it is; a local path made absolute against dir. */
export const urlOrPath = (location: string, dir = process.cwd()): string => (isUrl(location) ? location : resolve(dir, location));
