// The machine's fork watch as pmcd keeps it (keepOpen): between holds its
// rings fill with what nobody reads, and the kernel reports that loss (LOST)
// with the first record it writes after a hold has emptied them, which is no
// loss of that hold's. A ring that overflows during a hold is one (the attach
// starts over: proc-threads). Its own file: a kept watch stays for the process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { MachineForkWatch } from '../src/md/machine-fork-watch.js';

/** `n` processes started and ended one after another on CPU 0: a FORK and an EXIT record each in CPU 0's ring. */
function forkStorm(n: number): void {
  execFileSync('taskset', ['-c', '0', 'sh', '-c', `i=0; while [ $i -lt ${n} ]; do /bin/true; i=$((i+1)); done`]);
}

test('kept open between holds: rings that overflowed while nobody held them are no loss of the next hold; one that overflows during a hold is', (t) => {
  // Eight pages per CPU: 1,024 task records.
  const first = MachineForkWatch.hold(process.pid, 8);
  if (!first) return t.skip('this process may not watch the whole machine (CAP_PERFMON)');
  MachineForkWatch.keepOpen();
  first.close();
  forkStorm(1000);
  const hold = MachineForkWatch.hold(process.pid)!;
  try {
    // The next records written on CPU 0 come after the kernel's LOST for what it dropped before the hold.
    forkStorm(2);
    hold.drain(() => undefined);
    assert.equal(hold.overflows, 0, 'a loss from before the hold was taken for the hold\'s');
    forkStorm(1000);
    hold.drain(() => undefined);
    assert.equal(hold.overflows, 1, 'a ring that overflowed during the hold');
  } finally {
    hold.close();
  }
});
