// Reading perf counters (PerfEvent.read, readValue, readRaw) against this
// machine's kernel: the values agree, a counter that did not run all the
// time it was enabled is refused, a group reads in one go, errors are named.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { onlineCpus } from '../src/os/cpus.js';
import { PerfFormat, PerfType } from '../src/md/perf-attr.js';
import { COUNTING_READ_FORMAT, PerfEvent } from '../src/md/perf-event.js';
import { isPmcError } from '../src/pmc-error.js';

const TASK_CLOCK = 1n;

function threadCpuNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
}

/** Spins until schedstat says this thread ran `ms` (schedstat lags the running thread by up to a tick). */
function spin(ms: number): void {
  const start = threadCpuNs();
  while (threadCpuNs() - start < ms * 1e6) {
    /* spin */
  }
}

function assertPmcError(fn: () => unknown, code: string, fragment: string): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isPmcError(e), String(e));
    assert.equal(e.code, code, e.message);
    assert.ok(e.message.includes(fragment), e.message);
    return true;
  });
}

test('readValue is the value read() sees, and grows with the work counted', () => {
  const ev = PerfEvent.open({ type: PerfType.SOFTWARE, config: TASK_CLOCK, readFormat: COUNTING_READ_FORMAT, flags: { disabled: true, pinned: true } }, { pid: 0, cpu: -1 });
  try {
    ev.enable();
    spin(20);
    ev.disable();
    const r = ev.read();
    assert.equal(r.enabled, r.running, 'a pinned software counter ran all the time it was enabled');
    assert.ok(r.value >= 10_000_000n, `task-clock ${r.value} ns over 20 ms of CPU`);
    assert.equal(ev.readValue(), r.value, 'disabled: the same value twice');
    ev.enable();
    spin(2);
    assert.ok(ev.readValue() > r.value);
  } finally {
    ev.close();
  }
});

test('readValue refuses a counter that was enabled longer than it ran', { skip: onlineCpus().length < 2 && 'needs two CPUs' }, () => {
  // A per-thread counter bound to one CPU is enabled whenever the thread runs,
  // but runs only while the thread is on that CPU: one of two such counters
  // (one per CPU) ran less than it was enabled, unless the thread never moved.
  const [a, b] = onlineCpus();
  const events = [a, b].map((cpu) =>
    PerfEvent.open({ type: PerfType.SOFTWARE, config: TASK_CLOCK, readFormat: COUNTING_READ_FORMAT, flags: { disabled: true } }, { pid: 0, cpu: cpu! }),
  );
  try {
    for (const ev of events) ev.enable();
    spin(20);
    for (const ev of events) ev.disable();
    const partial = events.filter((ev) => {
      const r = ev.read();
      return r.running < r.enabled;
    });
    assert.ok(partial.length >= 1, 'the thread ran on one CPU at least part of the time');
    for (const ev of partial) assertPmcError(() => ev.readValue(), 'EBUSY', 'multiplexed');
  } finally {
    for (const ev of events) ev.close();
  }
});

test('a group reads in one read: nr, times, then every member in order', () => {
  const format = PerfFormat.GROUP | COUNTING_READ_FORMAT;
  const leader = PerfEvent.open({ type: PerfType.SOFTWARE, config: TASK_CLOCK, readFormat: format, flags: { disabled: true, pinned: true } }, { pid: 0, cpu: -1 });
  const faults = PerfEvent.open({ type: PerfType.SOFTWARE, config: 2n, readFormat: format, flags: {} }, { pid: 0, cpu: -1, groupFd: leader.fd });
  try {
    leader.enable();
    spin(20);
    Buffer.alloc(4 << 20).fill(1); // fresh pages fault on first touch
    leader.disable();
    const buf = Buffer.alloc(8 * 5);
    assert.equal(leader.readRaw(buf), 8 * 5);
    assert.equal(buf.readBigUInt64LE(0), 2n, 'nr');
    assert.equal(buf.readBigUInt64LE(8), buf.readBigUInt64LE(16), 'enabled == running');
    assert.ok(buf.readBigUInt64LE(24) >= 10_000_000n, `task-clock ${buf.readBigUInt64LE(24)} ns over 20 ms of CPU`);
    assert.ok(buf.readBigUInt64LE(32) > 0n, `page faults: ${buf.readBigUInt64LE(32)}`);
    assertPmcError(() => leader.readRaw(Buffer.alloc(16)), 'ENOSPC', 'read');
  } finally {
    faults.close();
    leader.close();
  }
});

test('a read of a closed counter fails with EBADF, naming the fd', () => {
  const ev = PerfEvent.open({ type: PerfType.SOFTWARE, config: TASK_CLOCK, readFormat: COUNTING_READ_FORMAT, flags: { disabled: true } }, { pid: 0, cpu: -1 });
  ev.close();
  assertPmcError(() => ev.readValue(), 'EBADF', `fd ${ev.fd}`);
});
