// hwpmc never multiplexes a PMC: a PMC either counts all the time it runs
// or fails. Software events never run out of counters, so the path where
// the PMU has none left is driven through a fake class with two hardware
// counters: what perf does to a pinned event it cannot schedule (error
// state, reads as EBUSY) is what the module must pass on, never a partial
// or scaled value, while the PMCs that hold counters stay exact.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { selfCaller } from '../src/module/caller.js';
import { PMC_CPU_ANY, PmcClass, PmcMode } from '../src/module/pmc-types.js';
import { PmcError } from '../src/pmc-error.js';
import { FakeClass, fakeModule } from './fake-class.js';

const target = spawn('sleep', ['300'], { stdio: 'ignore' });

after(() => {
  target.kill('SIGKILL');
});

const isEbusy = (e: unknown): boolean => e instanceof PmcError && e.code === 'EBUSY';

test('a PMU out of counters: the PMC it cannot hold reads as EBUSY, the others exactly; the error outlives a freed counter', async () => {
  const cls = new FakeClass({ rows: 4, counters: 2 });
  const m = fakeModule({ classes: [cls] });
  const me = selfCaller();
  try {
    const tc = { classId: PmcClass.FAKE, event: 1, mode: PmcMode.TC, cpu: PMC_CPU_ANY, caps: 0, flags: 0 };
    const ids = [m.pmcAllocate(me, tc), m.pmcAllocate(me, tc), m.pmcAllocate(me, tc)];
    for (const id of ids) m.pmcAttach(me, id, target.pid!);
    for (const id of ids) m.pmcStart(me, id);
    cls.advance(10n);
    assert.equal(m.pmcRead(me, ids[0]), 10n);
    assert.equal(m.pmcRead(me, ids[1]), 10n);
    const errors = m.stats.syscall_errors;
    assert.throws(() => m.pmcRead(me, ids[2]), isEbusy, 'the third PMC found no counter');
    assert.equal(m.stats.syscall_errors, errors + 1, 'the failed read is counted');

    // A counter freed later does not bring the failed PMC back (perf leaves a pinned event in error state).
    m.pmcStop(me, ids[0]);
    cls.advance(5n);
    assert.throws(() => m.pmcRead(me, ids[2]), isEbusy);
    assert.equal(m.pmcRead(me, ids[0]), 10n, 'a stopped PMC keeps its value');
    assert.equal(m.pmcRead(me, ids[1]), 15n);
    // A PMC started now gets the freed counter and counts.
    const late = m.pmcAllocate(me, tc);
    m.pmcAttach(me, late, target.pid!);
    m.pmcStart(me, late);
    cls.advance(1n);
    assert.equal(m.pmcRead(me, late), 1n);

  } finally {
    await m.shutdown();
  }
});
