// What pmcstat -R says about the state of a log: cut short (no CLOSELOG),
// empty, records written out of time order (issue 6, defect 7 and the
// time-order requirement).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodedLength, encodeRecord } from '../src/log/codec.js';
import { LogType, type CallchainRecord, type LogRecord } from '../src/log/records.js';
import { pmcstat } from './cli-fixture.js';
import { buildProgram, pcIn, retIn, tempDir } from './report-fixture.js';

const dir = tempDir('tspmc-report-log-state-');
after(() => rmSync(dir, { recursive: true, force: true }));
const prog = buildProgram(dir, 'prog', ['-no-pie']);
const PID = 700;

function writeLog(path: string, recs: LogRecord[]): void {
  const bytes = new Uint8Array(recs.reduce((n, r) => n + encodedLength(r), 0));
  let at = 0;
  for (const r of recs) at = encodeRecord(r, bytes, at);
  writeFileSync(path, bytes);
}

const head = (): LogRecord[] => [
  { type: LogType.INITIALIZE, ts: 1, version: 0x0a000000, cpuType: 0, tscFreq: 1e9, wallSec: 0, wallNsec: 0, cpuid: 'test' },
  { type: LogType.PMCALLOCATEDYN, ts: 2, pmcid: 0x100, event: 0, flags: 0, rate: 1000n, eventName: 'cpu-clock' },
  { type: LogType.PROCEXEC, ts: 3, pid: PID, pmcid: 0x100, base: 0n, dyn: 0n, pathname: prog.path },
  { type: LogType.MAP_IN, ts: 4, pid: PID, start: BigInt(prog.linkBase), pathname: prog.path },
];

const sample = (ts: number, cpu: number, fn: string): CallchainRecord => ({
  type: LogType.CALLCHAIN,
  ts,
  pid: PID,
  tid: PID,
  pmcid: 0x100,
  cpu,
  flags: 1,
  pcs: BigUint64Array.of(pcIn(prog, BigInt(prog.linkBase), fn, 1), retIn(prog, BigInt(prog.linkBase), 'main')),
});

test('a log cut between records is analyzed and reported as cut short, in the warning and in --stats', () => {
  const log = join(dir, 'cut.pmclog');
  writeLog(log, [...head(), sample(10, 0, 'inner'), sample(11, 0, 'inner'), sample(12, 0, 'outer')]);
  const folded = join(dir, 'cut.folded');
  const r = pmcstat(['-R', log, '--folded', folded, '--stats', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /^pmcstat: WARNING: .*cut\.pmclog: the log was cut short: no CLOSELOG after its 7 records/m);
  const stats = JSON.parse(r.stdout);
  assert.equal(stats.cutShort, true);
  assert.equal(stats.samples, 3);
  assert.equal(readFileSync(folded, 'utf8'), 'prog;main;inner 2\nprog;main;outer 1\n');
  const text = pmcstat(['-R', log, '--stats']);
  assert.match(text.stdout, /#log\/cut-short +yes/);
  // The record dump says it too.
  const dump = pmcstat(['-R', log]);
  assert.equal(dump.status, 0, dump.stderr);
  assert.match(dump.stderr, /WARNING: .*cut\.pmclog: the log was cut short: no CLOSELOG after its 7 records/);
  // With its CLOSELOG, the same log is complete and nothing is said.
  const whole = join(dir, 'whole.pmclog');
  writeLog(whole, [...head(), sample(10, 0, 'inner'), { type: LogType.CLOSELOG, ts: 20 }]);
  const w = pmcstat(['-R', whole, '--stats', '--json']);
  assert.equal(w.stderr, '');
  assert.equal(JSON.parse(w.stdout).cutShort, false);
});

test('a file that is no log at all: one error naming the first bad word, not also "empty"', () => {
  const log = join(dir, 'noise.pmclog');
  writeFileSync(log, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 167 + 89) & 0xff)));
  const r = pmcstat(['-R', log, '-G', join(dir, 'noise.txt')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^pmcstat: ERROR: .*noise\.pmclog: log byte offset 0 \(0x0\): bad magic 0x\w+ .*\(EINVAL\)\n$/);
});

test('an empty log is an error, not an empty analysis', () => {
  const log = join(dir, 'empty.pmclog');
  writeFileSync(log, '');
  const r = pmcstat(['-R', log, '--stats', '--json']);
  assert.equal(r.status, 1);
  assert.equal(r.stdout, '', 'no all-zero statistics');
  assert.match(r.stderr, /^pmcstat: ERROR: .*empty\.pmclog: the log is empty: no records\n$/);
  const dump = pmcstat(['-R', log]);
  assert.equal(dump.status, 1);
  assert.match(dump.stderr, /^pmcstat: ERROR: .*the log is empty: no records\n$/);
  // A log that cannot be opened: one error line, no statistics either.
  const missing = pmcstat(['-R', join(dir, 'missing.pmclog'), '--stats', '--json']);
  assert.equal(missing.status, 1);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /^pmcstat: ERROR: cannot open log ".*missing\.pmclog" for reading: .* \(ENOENT\)\n$/);
});

test('a log not in time order (per-CPU sweeps after the side-band) analyzes as the ordered log', () => {
  // Process PID runs prog's inner, execs prog again mapped elsewhere at ts 50, then runs outer.
  const base2 = 0x7000_0000n;
  const after = (ts: number, cpu: number): CallchainRecord => ({
    ...sample(ts, cpu, 'outer'),
    pcs: BigUint64Array.of(pcIn(prog, base2 + BigInt(prog.linkBase), 'outer', 1), retIn(prog, base2 + BigInt(prog.linkBase), 'main')),
  });
  const exec: LogRecord[] = [
    { type: LogType.PROCEXEC, ts: 50, pid: PID, pmcid: 0x100, base: 0n, dyn: 0n, pathname: prog.path + '-again' },
    { type: LogType.MAP_IN, ts: 50, pid: PID, start: base2 + BigInt(prog.linkBase), pathname: prog.path },
  ];
  const before = [10, 20, 30, 40].map((ts) => sample(ts, ts % 20 === 0 ? 1 : 0, 'inner'));
  const later = [60, 70, 80, 90].map((ts) => after(ts, ts % 20 === 0 ? 1 : 0));
  const ordered = [...head(), ...before, ...exec, ...later, { type: LogType.CLOSELOG, ts: 100 } as LogRecord];
  // As a collector sweeping CPU by CPU writes it: the side-band first, then CPU 0's samples, then CPU 1's.
  const all = [...before, ...later];
  const swept = [...head(), ...exec, ...all.filter((s) => s.cpu === 0), ...all.filter((s) => s.cpu === 1), { type: LogType.CLOSELOG, ts: 100 } as LogRecord];
  const outputs = (recs: LogRecord[], name: string): string => {
    const log = join(dir, `${name}.pmclog`);
    writeLog(log, recs);
    const folded = join(dir, `${name}.folded`);
    const r = pmcstat(['-R', log, '--folded', folded]);
    assert.equal(r.status, 0, r.stderr);
    return readFileSync(folded, 'utf8');
  };
  const expected = outputs(ordered, 'ordered');
  assert.equal(expected, 'prog-again;main;outer 4\nprog;main;inner 4\n');
  assert.equal(outputs(swept, 'swept'), expected);
  // The other way round: the second image's mapping logged after samples that ran in it.
  const lateMap = [...head(), ...before, exec[0], ...later.slice(0, 2), exec[1], ...later.slice(2), { type: LogType.CLOSELOG, ts: 100 } as LogRecord];
  assert.equal(outputs(lateMap, 'late-map'), expected);
});

test('records the collector could not log: counted by --stats (text and JSON) and a warning', () => {
  const log = join(dir, 'unlogged.pmclog');
  const none = { exec: 0, fork: 0, thread: 0, exit: 0, map: 0, csw: 0 };
  writeLog(log, [
    ...head(),
    sample(10, 0, 'inner'),
    { type: LogType.DROPNOTIFY, ts: 11, dropped: 3, lost: 1, sideband: { ...none, exec: 1, map: 4 } },
    { type: LogType.DROPNOTIFY, ts: 12, dropped: 2, lost: 0, sideband: { ...none, fork: 2, map: 1, csw: 5 } },
    { type: LogType.DROPNOTIFY, ts: 13, dropped: 0, lost: 6 },
    { type: LogType.CLOSELOG, ts: 20 },
  ]);
  const r = pmcstat(['-R', log, '--stats', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const stats = JSON.parse(r.stdout);
  assert.deepEqual(stats.unlogged, { exec: 1, fork: 2, thread: 0, exit: 0, map: 5, csw: 5 });
  assert.equal(stats.dropped, 5);
  assert.equal(stats.lost, 7);
  assert.match(r.stderr, /WARNING: .*unlogged\.pmclog: 5 samples could not be logged by the collector and 7 were lost by the kernel/);
  assert.match(r.stderr, /WARNING: .*unlogged\.pmclog: 1 exec, 2 fork, 5 map, 5 csw records could not be logged/);
  const text = pmcstat(['-R', log, '--stats']).stdout;
  for (const [k, n] of [['exec', 1], ['fork', 2], ['map', 5], ['csw', 5]]) assert.match(text, new RegExp(`#unlogged/${k} +${n}\\n`));
  assert.doesNotMatch(text, /#unlogged\/thread/);
});
