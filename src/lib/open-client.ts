// Which module a program talks to, as userland finds hwpmc loaded or not:
// pmcd's socket when pmcd runs (TSPMC_SOCKET, else /run/tspmc/pmcd.sock),
// else a module in this process. TSPMC_LOCAL=1 (pmcstat --local) forces the
// in-process module. A socket named by TSPMC_SOCKET that nobody answers is
// an error, not a silent fallback. The socket client (and the op schemas it
// checks replies with, zod) is loaded only when a socket is used: a program
// measuring in process does not pay for it at start.
import { existsSync } from 'node:fs';
import type { OpArgs, OpResult } from '../module/op-table.js';
import type { PmcOp } from '../module/pmc-types.js';
import { isPmcError, PmcError } from '../pmc-error.js';
import { LocalModuleClient, type ModuleClient } from './module-client.js';
import type { PmcdClient } from './pmcd-client.js';

export const DEFAULT_PMCD_SOCKET = '/run/tspmc/pmcd.sock';

export async function openModuleClient(env: NodeJS.ProcessEnv = process.env, defaultSocket = DEFAULT_PMCD_SOCKET): Promise<ModuleClient> {
  if (env.TSPMC_LOCAL === '1') return new LocalModuleClient();
  const named = env.TSPMC_SOCKET;
  const path = named ?? defaultSocket;
  if (named !== undefined || existsSync(path)) {
    try {
      return await connectPmcd(path);
    } catch (e) {
      if (named !== undefined) {
        throw new PmcError(isPmcError(e) ? e.code : 'ECONNREFUSED', `TSPMC_SOCKET names ${path}, where no pmcd answers: start it with \`pmcd --socket ${path}\`, or set TSPMC_LOCAL=1 to measure in this process`);
      }
      // A socket left behind by a pmcd that is gone: as if pmcd did not run.
    }
  }
  return new LocalWithoutPmcd();
}

/** A client of the pmcd listening on `socketPath` (ENOENT or ECONNREFUSED when none does). */
export async function connectPmcd(socketPath: string): Promise<PmcdClient> {
  const { PmcdClient } = await import('./pmcd-client.js');
  return PmcdClient.connect(socketPath);
}

/** The in-process module, chosen because pmcd does not run: its refusals say how pmcd would help. */
class LocalWithoutPmcd extends LocalModuleClient {
  override async call<K extends PmcOp>(op: K, args: OpArgs<K>): Promise<OpResult<K>> {
    try {
      return await super.call(op, args);
    } catch (e) {
      if (isPmcError(e) && (e.code === 'EACCES' || e.code === 'EPERM')) {
        throw new PmcError(e.code, `${e.detail}; in-process access only: pmcd is not running (start it as root with \`pmcd\` or \`systemctl start pmcd\`)`);
      }
      throw e;
    }
  }
}
