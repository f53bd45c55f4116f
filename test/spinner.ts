import { type ChildProcess, spawn } from 'node:child_process';

/**
 * A busy loop that loads a CPU for a test. It dies with the test process
 * (PR_SET_PDEATHSIG through setpriv), so a test killed by its timeout leaves
 * no loader burning a CPU under the tests after it. `wrap` goes before the
 * loop's shell (taskset -c 0, nice -n 19); its pid is the loop's (exec).
 */
export function spinner(...wrap: string[]): ChildProcess {
  return spawn('setpriv', ['--pdeathsig', 'KILL', ...wrap, 'sh', '-c', 'while :; do :; done'], { stdio: 'ignore' });
}
