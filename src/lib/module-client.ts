// The module as an owner sees it: one call for every op, bound to the
// calling owner, plus the owner's notice channel and its end. The local
// client runs the module in this process; pmcd's client sends the same
// calls over its socket. Neither knows any op: OP_TABLE describes them.
import type { Caller } from '../module/caller.js';
import { selfCaller } from '../module/caller.js';
import { loadModule } from '../module/load.js';
import type { OpArgs, OpResult } from '../module/op-table.js';
import type { OwnerSignal } from '../module/owner.js';
import type { PmcModule } from '../module/pmc-module.js';
import type { PmcOp } from '../module/pmc-types.js';

export interface ModuleClient {
  /** The owner's pid (this process for a local module). */
  readonly ownerPid: number;
  /** One op of the module, on behalf of this owner. */
  call<K extends PmcOp>(op: K, args: OpArgs<K>): Promise<OpResult<K>>;
  /** Out-of-band notices (hwpmc's SIGIO). Returns the unsubscribe function. */
  onSignal(listener: (s: OwnerSignal) => void): () => void;
  /** The owner goes away: every PMC is stopped and released. */
  close(): Promise<void>;
}

/** The module in this process, owned by this process. */
export class LocalModuleClient implements ModuleClient {
  constructor(
    readonly module: PmcModule = loadModule(),
    readonly caller: Caller = selfCaller(),
  ) {}

  get ownerPid(): number {
    return this.caller.pid;
  }

  /** Not an async function: the module's value goes back in a resolved promise without an async frame around it (about 20 ns a read). */
  call<K extends PmcOp>(op: K, args: OpArgs<K>): Promise<OpResult<K>> {
    try {
      return Promise.resolve(this.module.call(this.caller, op, args));
    } catch (e) {
      return Promise.reject(e);
    }
  }

  onSignal(listener: (s: OwnerSignal) => void): () => void {
    return this.module.onSignal(this.caller, listener);
  }

  async close(): Promise<void> {
    return this.module.ownerExited(this.caller);
  }
}
