// One process, held by identity rather than by number: a pidfd names the
// process it was opened on even after its pid is reused, and reads as
// readable exactly when the whole thread group has exited (a leader that
// called pthread_exit while other threads run is not an exit). Without
// pidfd_open (kernels before 5.3, or TSPMC_NO_PIDFD=1: see libc.ts) the pid
// and the start time in /proc name the process instead; that start time is
// in clock ticks, so a pid reused within the tick its process started in
// would pass for it.
import { errnoName, PmcError } from '../pmc-error.js';
import { closeFd, pidfdOpen, readableNow } from './libc.js';
import { processExited, processStartTime } from './procfs.js';

export class ProcessHandle {
  private exited = false;

  /**
   * @param fd the pidfd, or -1 when this kernel has none
   * @param startTime with no pidfd: the start time that names the process
   */
  private constructor(
    readonly pid: number,
    private fd: number,
    private readonly startTime: number | undefined,
  ) {}

  /** A handle on `pid`; ESRCH when it is gone. */
  static open(pid: number): ProcessHandle {
    const fd = pidfdOpen(pid);
    if (fd >= 0) return new ProcessHandle(pid, fd, undefined);
    const code = errnoName(fd);
    if (code === 'ESRCH') throw new PmcError('ESRCH', `process ${pid} does not exist`);
    if (code !== 'ENOSYS') throw new PmcError(code, `pidfd_open of process ${pid} failed`);
    const startTime = processStartTime(pid);
    if (startTime === undefined) throw new PmcError('ESRCH', `process ${pid} does not exist`);
    return new ProcessHandle(pid, -1, startTime);
  }

  /** Whether the process has exited (a zombie counts as exited); once true, stays true. */
  hasExited(): boolean {
    if (this.exited) return true;
    if (this.startTime === undefined) {
      if (this.fd < 0) throw new PmcError('EBADF', `the handle on process ${this.pid} is closed`);
      const r = readableNow([this.fd]);
      if (typeof r === 'number') throw new PmcError(errnoName(r), `poll of the pidfd of process ${this.pid} failed`);
      this.exited = r[0];
    } else {
      this.exited = processExited(this.pid) || processStartTime(this.pid) !== this.startTime;
    }
    return this.exited;
  }

  /** The pidfd, which poll(2) finds readable once the process has exited; undefined without one. */
  get pollFd(): number | undefined {
    return this.fd >= 0 ? this.fd : undefined;
  }

  get fdCount(): number {
    return this.fd >= 0 ? 1 : 0;
  }

  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }
}
