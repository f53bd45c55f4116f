// pmcstat's code cache: V8's compiled code of the bundle's chunks kept on
// disk between runs. A short run spends much of its CPU compiling each
// function the first time it is called (Node's own modules come with such a
// cache built into node; ours do not). Once installed, the hook below
// compiles each chunk required from the bundle's directory (run-measurement,
// the module, the log codec: all but the tool's first few files) with the
// cache an earlier run left (vm.Script's cachedData), if V8 accepts it (same
// V8, same flags, same source length); otherwise as Node would, and the
// process leaves that chunk's cache as it exits, with every function the run
// compiled. A cache file also names the bundle file, its size and mtime, since
// V8 checks only the source's length; it is read only if this user owns it
// (it is code). Not written after an analysis turned inlining back on (V8
// would then refuse it: its flags differ). In cacheDir() (TSPMC_CACHE_DIR=''
// turns it off); only in the CommonJS bundle (dist/bin), not in tsc's output.
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import Module, { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Script } from 'node:vm';
import { cacheDir } from '../os/cache-dir.js';
import { tunedForAnalysis } from './v8-tuning.js';

type Loader = (module: Module, filename: string) => void;
interface Compiled {
  file: string;
  identity: string;
  script: Script;
}

/**
 * Installs the hook (once), for the .cjs files under the directory this code
 * runs from. `kind` names the cache: a counting run and a sampling run call
 * different functions of the same chunks, and each kind keeps its own.
 */
export function useCodeCache(kind: string): void {
  const here = fileURLToPath(import.meta.url);
  const cache = here.endsWith('.cjs') ? cacheDirIfAny() : undefined;
  if (cache === undefined) return;
  const bundle = dirname(here);
  const extensions = (Module as unknown as { _extensions: Record<string, Loader> })._extensions;
  if (extensions['.cjs'] !== undefined) return;
  const asNode = extensions['.js']!;
  const made: Compiled[] = [];
  extensions['.cjs'] = (module, filename) => {
    if (!filename.startsWith(bundle + '/')) return asNode(module, filename);
    const { source, stat } = readSource(filename);
    const file = join(cache, `code-${kind}-${relative(bundle, filename).replace(/\//g, '_')}.v8`);
    const identity = `${filename} ${stat.size} ${stat.mtimeMs}\n`;
    const cachedData = readCache(file, identity);
    // The wrapper Node puts around a CommonJS file, on the source's first line (line numbers stay).
    const script = new Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, { filename, cachedData });
    if (cachedData === undefined || script.cachedDataRejected) {
      if (made.length === 0) process.on('exit', () => writeCaches(cache, made));
      made.push({ file, identity, script });
    }
    const body = script.runInThisContext() as (...args: unknown[]) => void;
    body.call(module.exports, module.exports, createRequire(filename), module, filename, dirname(filename));
  };
}

function cacheDirIfAny(): string | undefined {
  try {
    return cacheDir();
  } catch {
    // No $HOME and no passwd entry (os.homedir() throws): no cache, the run goes on.
    return undefined;
  }
}

/** The source and, from the same open file, its size and mtime. */
function readSource(filename: string): { source: string; stat: { size: number; mtimeMs: number } } {
  const fd = openSync(filename, 'r');
  try {
    return { stat: fstatSync(fd), source: readFileSync(fd, 'utf8') };
  } finally {
    closeSync(fd);
  }
}

/** The V8 data of `file` if it was made from the source `identity` names and belongs to this user. */
function readCache(file: string, identity: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    if (st.uid !== process.geteuid?.() || st.size <= identity.length) return undefined;
    const data = Buffer.allocUnsafe(st.size);
    if (readSync(fd, data, 0, st.size, 0) !== st.size || data.toString('utf8', 0, identity.length) !== identity) return undefined;
    return data.subarray(identity.length);
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** At exit: each cache made in this run, written whole or not at all (a rename), errors ignored. */
function writeCaches(dir: string, made: Compiled[]): void {
  if (tunedForAnalysis()) return;
  try {
    mkdirSync(dir, { recursive: true });
  } catch {
    return;
  }
  for (const { file, identity, script } of made) {
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, Buffer.concat([Buffer.from(identity, 'utf8'), script.createCachedData()]));
      renameSync(tmp, file);
    } catch {
      rmSync(tmp, { force: true });
    }
  }
}
