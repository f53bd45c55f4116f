// A process that is the target of one or more PMCs (hwpmc's pmc_process):
// at most one PMC per row, so two PMCs never fight over one counter of a
// thread. It holds the process by identity (a pidfd), so the exit hook
// sees its exit even when the pid is reused at once.
import { ProcessHandle } from '../os/process-handle.js';
import type { Pmc } from './pmc.js';

export class TargetProcess {
  /** Row index -> the PMC attached at that row. */
  readonly pmcs = new Map<number, Pmc>();

  private constructor(
    readonly pid: number,
    private readonly handle: ProcessHandle,
  ) {}

  /** ESRCH when the process is gone. */
  static open(pid: number): TargetProcess {
    return new TargetProcess(pid, ProcessHandle.open(pid));
  }

  /** The process (this one, not a later one with its pid) has exited; a /proc or poll failure is a PmcError. */
  hasExited(): boolean {
    return this.handle.hasExited();
  }

  /** A descriptor that polls readable once the process has exited (its pidfd); undefined when there is none. */
  get pollFd(): number | undefined {
    return this.handle.pollFd;
  }

  get fdCount(): number {
    return this.handle.fdCount;
  }

  /** The process table forgets it. */
  close(): void {
    this.handle.close();
  }
}
