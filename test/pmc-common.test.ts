// What every layer shares: CPU lists, and the clock. The clock test opens a
// real task-clock sampler on this thread as md opens them (use_clockid with
// PMC_CLOCKID) and checks that every sample's kernel time lies between two
// readings of now(): the log's clock and the kernel's are one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PerfEvent } from '../src/md/perf-event.js';
import { PerfSample, PerfType } from '../src/md/perf-attr.js';
import { PerfRecordType } from '../src/md/perf-records.js';
import { decodeSample, SampleFields, SampleLayout } from '../src/md/perf-sample-record.js';
import { RingBuffer } from '../src/md/ring-buffer.js';
import { now, parseCpuList, PMC_CLOCKID, PMC_CPU_LIMIT } from '../src/pmc-common.js';
import { isPmcError } from '../src/pmc-error.js';

test('cpu lists: kernel syntax, sorted, each CPU once, errors name the source', () => {
  assert.deepEqual(parseCpuList('8-9,0-3,5,2\n', 'l'), [0, 1, 2, 3, 5, 8, 9]);
  assert.deepEqual(parseCpuList(' 7 ', 'l'), [7]);
  assert.deepEqual(parseCpuList('', 'l'), []);
  for (const [text, fragment] of [['3-1', 'ends before'], ['0-x', '"0-x"'], ['1,,2', '""'], ['-1', '"-1"'], [`0-${PMC_CPU_LIMIT}`, 'beyond']]) {
    assert.throws(
      () => parseCpuList(text, 'option -c'),
      (e: unknown) => isPmcError(e, 'EINVAL') && e.message.startsWith('option -c: ') && e.message.includes(fragment),
      text,
    );
  }
});

test('now() is the clock the kernel stamps md\'s samples with', () => {
  const TASK_CLOCK = 1n;
  const ev = PerfEvent.open(
    {
      type: PerfType.SOFTWARE,
      config: TASK_CLOCK,
      samplePeriod: 100_000n,
      sampleType: PerfSample.TID | PerfSample.TIME,
      clockid: PMC_CLOCKID,
      flags: { disabled: true, useClockid: true, excludeKernel: true, excludeHv: true },
    },
    { pid: 0, cpu: -1 },
  );
  const ring = RingBuffer.map(ev, 16);
  try {
    const before = now();
    ev.enable();
    // 30 ms of this thread's CPU (however busy the machine): about 300 samples.
    const cpu0 = process.cpuUsage().user;
    let x = 0;
    while (process.cpuUsage().user - cpu0 < 30_000 && now() - before < 20e9) for (let i = 0; i < 10_000; i++) x += Math.sqrt(x + 1);
    ev.disable();
    const after = now();
    const layout = new SampleLayout(PerfSample.TID | PerfSample.TIME);
    const f = new SampleFields();
    const times: number[] = [];
    ring.drain((_b, view, offset, type) => {
      if (type !== PerfRecordType.SAMPLE) return;
      decodeSample(layout, view, offset, f);
      times.push(f.time);
    });
    assert.ok(times.length > 10, `samples: ${times.length} (${x})`);
    for (const t of times) assert.ok(t >= before && t <= after, `sample time ${t} outside [${before}, ${after}]`);
  } finally {
    ring.close();
    ev.close();
  }
});
