import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The ktrial checkout: compiled code runs from dist/harness/common/. */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const repoPath = (...p: string[]) => join(REPO_ROOT, ...p);
