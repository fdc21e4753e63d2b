// The guest image recipes are data (images/recipes/*.yaml); this module loads and checks
// them, so a typo in a recipe is reported with file:line:column before anything is built.
import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { badInput } from '../common/errors.js';
import { repoPath } from '../common/paths.js';
import { loadYamlFile } from '../common/yaml.js';
import { validate, obj, str, list, dict, int, oneOf, type Schema } from '../common/schema.js';

export const recipesDir = () => repoPath('images', 'recipes');

export const inRepo = (p: string) => (isAbsolute(p) ? p : repoPath(p));

export type Step =
  | { run: string[]; input?: string }
  | { kconfig: { file: string; set: Record<string, string> } }
  | { write: { path: string; text: string } }
  | { patch: string };

export interface Component {
  name: string;
  package: string;
  version: string;
  dsc_sha256: string;
  steps: Step[];
  /** Built file (relative to the unpacked tree) -> output name. */
  outputs: Record<string, string>;
}

export interface UserlandRecipe {
  debian: { fallback_mirror: string; fallback_suites: string[]; keyring: string };
  uapi_headers: string[];
  /** Environment of every run step (a fixed build date, a fixed locale). */
  build_env?: Record<string, string>;
  components: Component[];
}

export interface ImageRecipe {
  init: { sources: string[]; path: string; cflags?: string[] };
  binaries: Record<string, string>;
  links?: Record<string, string>;
  busybox_skip_applets?: string[];
  host_key: { type: 'ed25519'; path: string };
  directories?: Record<string, number>;
  devices?: Record<string, { type: 'c' | 'b'; major: number; minor: number; mode: number }>;
  files?: Record<string, { mode: number; text: string }>;
}

const stepSchema: Schema<Step> = oneOf([
  obj({ run: { schema: list(str(), { minItems: 1 }), required: true }, input: str() }),
  obj({ kconfig: { schema: obj({ file: { schema: str(), required: true }, set: { schema: dict(str(), { keyPattern: /^CONFIG_[A-Z0-9_]+$/ }), required: true } }), required: true } }),
  obj({ write: { schema: obj({ path: { schema: str(), required: true }, text: { schema: str(), required: true } }), required: true } }),
  obj({ patch: { schema: str({ pattern: /^[A-Za-z0-9._-]+$/ }), required: true } }),
]);

const userlandSchema = obj({
  debian: {
    schema: obj({
      fallback_mirror: { schema: str({ pattern: /^https?:\/\// }), required: true },
      fallback_suites: { schema: list(str(), { minItems: 1 }), required: true },
      keyring: { schema: str(), required: true },
    }),
    required: true,
  },
  uapi_headers: { schema: list(str({ pattern: /^[a-z0-9_-]+$/ })), required: true },
  build_env: dict(str(), { keyPattern: /^[A-Z_][A-Z0-9_]*$/ }),
  components: {
    schema: list(
      obj({
        name: { schema: str({ pattern: /^[a-z0-9-]+$/ }), required: true },
        package: { schema: str({ pattern: /^[a-z0-9][a-z0-9+.-]+$/ }), required: true },
        version: { schema: str(), required: true },
        dsc_sha256: { schema: str({ pattern: /^[0-9a-f]{64}$/ }), required: true },
        steps: { schema: list(stepSchema, { minItems: 1 }), required: true },
        outputs: { schema: dict(str({ pattern: /^[A-Za-z0-9._-]+$/ })), required: true },
      }),
      { minItems: 1 },
    ),
    required: true,
  },
});

const absPath = str({ pattern: /^\/[^\0]*$/ });
const mode = int({ min: 0, max: 0o7777 });

const imageSchema = obj({
  init: { schema: obj({ sources: { schema: list(str(), { minItems: 1 }), required: true }, path: { schema: absPath, required: true }, cflags: list(str()) }), required: true },
  binaries: { schema: dict(absPath), required: true },
  links: dict(str(), { keyPattern: /^\// }),
  busybox_skip_applets: list(str()),
  host_key: { schema: obj({ type: { schema: str({ enum: ['ed25519'] }), required: true }, path: { schema: absPath, required: true } }), required: true },
  directories: dict(mode, { keyPattern: /^\// }),
  devices: dict(
    obj({ type: { schema: str({ enum: ['c', 'b'] }), required: true }, major: { schema: int({ min: 0 }), required: true }, minor: { schema: int({ min: 0 }), required: true }, mode: { schema: mode, required: true } }),
    { keyPattern: /^\// },
  ),
  files: dict(obj({ mode: { schema: mode, required: true }, text: { schema: str(), required: true } }), { keyPattern: /^\// }),
});

export interface SelftestRecipe {
  /** linux-source-X.Y packages; a kernel's selftests come from the one selftestPackageFor picks. */
  packages: string[];
  programs: Record<string, { sources: string[]; include?: string[]; cflags?: string[] }>;
}

const treePath = str({ pattern: /^(?!\/)(?!.*\.\.)[A-Za-z0-9._/+-]+$/, description: 'a path inside the kernel tree' });

const selftestSchema = obj({
  packages: { schema: list(str({ pattern: /^linux-source-[0-9]+\.[0-9]+$/ }), { minItems: 1 }), required: true },
  programs: {
    schema: dict(obj({ sources: { schema: list(treePath, { minItems: 1 }), required: true }, include: list(treePath), cflags: list(str()) }), { keyPattern: /^[A-Za-z0-9._-]+$/ }),
    required: true,
  },
});

export interface Loaded<T> {
  recipe: T;
  /** The recipe file's exact text, for cache keys. */
  text: string;
  file: string;
}

async function load<T>(file: string, schema: Schema<T>, what: string): Promise<Loaded<T>> {
  const doc = await loadYamlFile(file);
  const recipe = validate(doc, schema, what);
  return { recipe, text: await readFile(file, 'utf8'), file };
}

export async function loadUserlandRecipe(file = join(recipesDir(), 'userland.yaml')): Promise<Loaded<UserlandRecipe>> {
  const l = await load<UserlandRecipe>(file, userlandSchema, 'guest userland recipe');
  const names = new Set<string>();
  for (const c of l.recipe.components) {
    if (names.has(c.name)) throw badInput(`guest userland recipe: component ${c.name} is listed twice`, { where: { file } });
    names.add(c.name);
  }
  return l;
}

export async function loadSelftestRecipe(file = join(recipesDir(), 'selftests.yaml')): Promise<Loaded<SelftestRecipe>> {
  return load<SelftestRecipe>(file, selftestSchema, 'guest selftests recipe');
}

export async function loadImageRecipe(file = join(recipesDir(), 'image.yaml')): Promise<Loaded<ImageRecipe>> {
  return load<ImageRecipe>(file, imageSchema, 'guest image layout');
}

/** Substitute ${name} variables; an unknown name is a recipe error. */
export function expand(s: string, vars: Record<string, string>, where: string): string {
  return s.replace(/\$\{([a-z_]+)\}/g, (_, name: string) => {
    const v = vars[name];
    if (v === undefined) throw badInput(`${where}: unknown variable \${${name}} (known: ${Object.keys(vars).join(', ')})`);
    return v;
  });
}

/**
 * Set options in a kconfig-format text: an existing "CONFIG_X=..." or "# CONFIG_X is not set"
 * line is replaced in place (appending would be ignored by oldconfig), others are appended.
 */
export function setKconfig(text: string, set: Record<string, string>): string {
  const lines = text.split('\n');
  const done = new Set<string>();
  const out = lines.map((line) => {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=/.exec(line) ?? /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    const key = m?.[1];
    if (key === undefined || !(key in set)) return line;
    if (done.has(key)) return undefined;
    done.add(key);
    const v = set[key]!;
    return v === 'n' ? `# ${key} is not set` : `${key}=${v}`;
  });
  const kept = out.filter((l): l is string => l !== undefined);
  if (kept.length && kept[kept.length - 1] === '') kept.pop();
  for (const [k, v] of Object.entries(set)) if (!done.has(k)) kept.push(v === 'n' ? `# ${k} is not set` : `${k}=${v}`);
  return `${kept.join('\n')}\n`;
}
