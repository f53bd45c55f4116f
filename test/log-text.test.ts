import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { formatRecord } from '../src/log/log-text.js';
import { LogType, PMC_CC_F_USERSPACE, type LogRecord } from '../src/log/records.js';

describe('log text (pmcstat -R)', () => {
  it('prints each record as pmcstat does: %-9s tag, a space, the fields', () => {
    const cases: [LogRecord, string][] = [
      [{ type: LogType.CLOSELOG, ts: 1 }, 'closelog  '],
      [{ type: LogType.DROPNOTIFY, ts: 1, dropped: 3, lost: 4 }, 'drop      3 4'],
      [
        { type: LogType.INITIALIZE, ts: 1, version: 0x0a000001, cpuType: 7, tscFreq: 1e9, wallSec: 0, wallNsec: 0, cpuid: 'x' },
        'initlog   0xa000001 "7"',
      ],
      [{ type: LogType.MAP_IN, ts: 1, pid: -1, start: 0xffffffff81000000n, pathname: '/boot/kernel' }, 'map-in    -1 0xffffffff81000000 "/boot/kernel"'],
      [
        { type: LogType.MAP_IN, ts: 1, pid: 42, start: 0x400000n, pathname: '/usr/bin/node', extent: { offset: 0x14c4000n, length: 0x192000n } },
        'map-in    42 0x400000 "/usr/bin/node" offset 0x14c4000 length 0x192000',
      ],
      [{ type: LogType.MAP_OUT, ts: 1, pid: 42, start: 0x1000n, end: 0x2000n }, 'map-out   42 0x1000 0x2000'],
      [{ type: LogType.PMCALLOCATE, ts: 1, pmcid: 0x20f00, event: 0x20001, flags: 0x80, rate: 65536n }, 'allocate  0x20f00 "0x20001" 0x80'],
      [
        { type: LogType.PMCALLOCATEDYN, ts: 1, pmcid: 0x20f01, event: 5, flags: 0, rate: 0n, eventName: 'cpu-clock' },
        'allocatedyn 0x20f01 "cpu-clock" 0x0',
      ],
      [{ type: LogType.PMCATTACH, ts: 1, pmcid: 0xf0020f00, pid: 99, pathname: '/bin/sh' }, 'attach    0xf0020f00 99 "/bin/sh"'],
      [{ type: LogType.PMCDETACH, ts: 1, pmcid: 0x30f00, pid: 99 }, 'detach    0x30f00 99'],
      [{ type: LogType.PROCCSW, ts: 1, value: 0xffffffffffffffffn, pmcid: 0x30f00, pid: 99, tid: 100 }, 'cswval    0x30f00 99 -1'],
      [
        { type: LogType.PROCEXEC, ts: 1, pid: 99, pmcid: 0xffffffff, base: 0x7f0000000000n, dyn: 0n, pathname: '/bin/ls' },
        'exec      0xffffffff 99 0x7f0000000000 0x0 "/bin/ls"',
      ],
      [{ type: LogType.PROCEXIT, ts: 1, pmcid: 0x30f00, pid: 99, value: 123456789012345678n }, 'exitval   0x30f00 99 123456789012345678'],
      [{ type: LogType.PROCFORK, ts: 1, oldpid: 99, newpid: 100 }, 'fork      99 100'],
      [{ type: LogType.SYSEXIT, ts: 1, pid: 100 }, 'exit      100'],
      [{ type: LogType.USERDATA, ts: 1, userdata: 0xcafe }, 'userdata  0xcafe'],
      [{ type: LogType.THR_CREATE, ts: 1, tid: 101, pid: 100, flags: 2, tdname: 'worker' }, 'thr-create 101 100 0x2 "worker"'],
      [{ type: LogType.THR_EXIT, ts: 1, tid: 101 }, 'thr-exit  101'],
      [{ type: LogType.PROC_CREATE, ts: 1, pid: 100, flags: 0x4000, pcomm: 'ls' }, 'proc-create 100 0x4000 "ls"'],
    ];
    for (const [rec, text] of cases) assert.equal(formatRecord(rec), text, LogType[rec.type]);
  });

  it('prints a call chain with one ... line per pc', () => {
    const rec: LogRecord = {
      type: LogType.CALLCHAIN,
      ts: 1,
      pid: 42,
      tid: 43,
      pmcid: 0x20f00,
      cpu: 1,
      flags: PMC_CC_F_USERSPACE,
      pcs: BigUint64Array.from([0x401136n, 0x7ffff7c29d90n]),
    };
    assert.equal(formatRecord(rec), ['callchain 42 0x20f00 1 2 u', '...       0x401136', '...       0x7ffff7c29d90'].join('\n'));
    assert.equal(formatRecord({ ...rec, flags: 0, pcs: BigUint64Array.from([0xffffffff81a0c2d3n]) }).split('\n')[0], 'callchain 42 0x20f00 1 1 s');
  });

  it('uses the caller’s names for CPU types and event codes', () => {
    const names = { cpuType: (t: number) => (t === 7 ? 'GENERIC' : undefined), event: (e: number) => (e === 0x20001 ? 'SOFT-CLOCK.HARD' : undefined) };
    const init: LogRecord = { type: LogType.INITIALIZE, ts: 1, version: 0x0a000001, cpuType: 7, tscFreq: 1e9, wallSec: 0, wallNsec: 0, cpuid: '' };
    assert.equal(formatRecord(init, names), 'initlog   0xa000001 "GENERIC"');
    assert.equal(formatRecord({ ...init, cpuType: 8 }, names), 'initlog   0xa000001 "8"');
    const alloc: LogRecord = { type: LogType.PMCALLOCATE, ts: 1, pmcid: 1, event: 0x20001, flags: 0, rate: 0n };
    assert.equal(formatRecord(alloc, names), 'allocate  0x1 "SOFT-CLOCK.HARD" 0x0');
  });
});
