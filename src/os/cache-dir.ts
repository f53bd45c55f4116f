// Where tspmc keeps what it computes once and reuses across runs (parsed
// kernel symbols, compiled code): $TSPMC_CACHE_DIR (empty: no cache), else
// $XDG_CACHE_HOME/tspmc, else ~/.cache/tspmc.
import { homedir } from 'node:os';
import { join } from 'node:path';

export function cacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.TSPMC_CACHE_DIR !== undefined) return env.TSPMC_CACHE_DIR === '' ? undefined : env.TSPMC_CACHE_DIR;
  return join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'tspmc');
}
