// The ring buffer and record decoders against real perf events: cpu-clock
// sampling of a busy child, side-band tracking of a child that forks and
// execs, a ring small enough to wrap, and one left full long enough to lose.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import { PerfEvent } from '../src/md/perf-event.js';
import { PerfSample, PerfType, type PerfEventAttr } from '../src/md/perf-attr.js';
import { RingBuffer } from '../src/md/ring-buffer.js';
import { decodeSideRecord, PerfRecordMisc, PerfRecordType, recordIdentifier, type SideRecord } from '../src/md/perf-records.js';
import { copyChainWords, decodeSample, SampleFields, SampleLayout } from '../src/md/perf-sample-record.js';
import { isPmcError } from '../src/pmc-error.js';

const FIXTURE_SOURCE = fileURLToPath(new URL('../../test/fixtures/ring-workload.c', import.meta.url));
const PERIOD_NS = 100_000;

let workDir = '';
let workload = '';

before(() => {
  workDir = mkdtempSync(path.join(tmpdir(), 'md-ring-'));
  workload = path.join(workDir, 'ring-workload');
  execFileSync('gcc', ['-O0', '-fno-omit-frame-pointer', '-o', workload, FIXTURE_SOURCE]);
  workload = realpathSync(workload);
});

after(() => {
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** CPU numbers from /sys/devices/system/cpu/online ("0-1,4"). */
function onlineCpus(): number[] {
  const cpus: number[] = [];
  for (const part of readFileSync('/sys/devices/system/cpu/online', 'utf8').trim().split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    for (let c = lo!; c <= (hi ?? lo!); c++) cpus.push(c);
  }
  return cpus;
}

/** The fixture, started and blocked on stdin until go(). */
class Workload {
  readonly exited: Promise<number>;
  private readonly lines: string[] = [];
  private waiting: ((line: string) => void) | null = null;

  private constructor(private readonly child: ChildProcess) {
    let partial = '';
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      partial += chunk;
      let nl: number;
      while ((nl = partial.indexOf('\n')) >= 0) {
        this.lines.push(partial.slice(0, nl));
        partial = partial.slice(nl + 1);
      }
      this.deliver();
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
  }

  static async start(args: string[]): Promise<Workload> {
    const w = new Workload(spawn(workload, args, { stdio: ['pipe', 'pipe', 'inherit'] }));
    assert.equal(await w.nextLine(), 'ready');
    return w;
  }

  get pid(): number {
    return this.child.pid!;
  }

  go(): void {
    this.child.stdin!.end('go\n');
  }

  nextLine(): Promise<string> {
    return new Promise((resolve) => {
      this.waiting = resolve;
      this.deliver();
    });
  }

  private deliver(): void {
    if (this.waiting && this.lines.length > 0) {
      const w = this.waiting;
      this.waiting = null;
      w(this.lines.shift()!);
    }
  }
}

/** The r-xp mapping of the workload binary in a live process, as [start, end). */
function textRange(pid: number): [bigint, bigint] {
  for (const line of readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n')) {
    const f = line.split(/\s+/);
    if (f[1] === 'r-xp' && f[5] === workload) {
      const [s, e] = f[0]!.split('-');
      return [BigInt('0x' + s), BigInt('0x' + e)];
    }
  }
  throw new Error(`no executable mapping of ${workload} in /proc/${pid}/maps`);
}

const SAMPLE_TYPE =
  PerfSample.IDENTIFIER | PerfSample.IP | PerfSample.TID | PerfSample.TIME | PerfSample.CPU | PerfSample.PERIOD | PerfSample.CALLCHAIN;

function cpuClock(period: number, inherit: boolean): PerfEventAttr {
  return {
    type: PerfType.SOFTWARE,
    config: 0n,
    samplePeriod: BigInt(period),
    sampleType: SAMPLE_TYPE,
    flags: { sampleIdAll: true, inherit },
  };
}

const TRACKING: PerfEventAttr = {
  type: PerfType.SOFTWARE,
  config: 9n, // PERF_COUNT_SW_DUMMY
  sampleType: PerfSample.IDENTIFIER | PerfSample.TID | PerfSample.TIME | PerfSample.CPU,
  flags: { inherit: true, mmap: true, mmap2: true, comm: true, commExec: true, task: true, sampleIdAll: true },
};

const u64Of = (v: DataView, o: number): bigint => v.getBigUint64(o, true);

test('cpu-clock samples of a busy child decode with its pid, period, per-CPU time order and call chains', async () => {
  const w = await Workload.start(['busy', '300']);
  const [textStart, textEnd] = textRange(w.pid);
  const sampling = SampleLayout.fromAttr(cpuClock(PERIOD_NS, true));
  const tracking = SampleLayout.fromAttr(TRACKING);
  const layouts = new Map<number, SampleLayout>();
  const events: PerfEvent[] = [];
  const rings: RingBuffer[] = [];
  const cpus = onlineCpus();
  try {
    for (const cpu of cpus) {
      // An inherited event must be per CPU to be mapped, and SET_OUTPUT only
      // joins events of the same CPU: one ring per CPU carries both events.
      const ev = PerfEvent.open(cpuClock(PERIOD_NS, true), { pid: w.pid, cpu });
      events.push(ev);
      const ring = RingBuffer.map(ev, 64);
      rings.push(ring);
      const side = PerfEvent.open(TRACKING, { pid: w.pid, cpu });
      events.push(side);
      side.setOutput(ev);
      layouts.set(Number(ev.id()), sampling);
      layouts.set(Number(side.id()), tracking);
    }

    const s = new SampleFields();
    const frameWords = new Int32Array(128 * 2);
    const frames = new DataView(frameWords.buffer);
    const archive = new Uint8Array(8 << 20);
    const archiveView = new DataView(archive.buffer);
    const archiveWords = new Int32Array(archive.buffer);
    let archived = 0;
    let samples = 0;
    let lost = 0;
    let userSamples = 0;
    let inText = 0;
    let deepChains = 0;
    let ringCpu = 0;
    const lastTime = new Map<number, number>();
    const sideRecords: SideRecord[] = [];

    const visit = (bytes: Uint8Array, view: DataView, offset: number, type: number, misc: number, size: number, words: Int32Array): void => {
      const layout = layouts.get(recordIdentifier(view, offset, type, size));
      assert.ok(layout, `record type ${type} carries an identifier of one of our events`);
      if (type !== PerfRecordType.SAMPLE) {
        const r = decodeSideRecord(layout, bytes, view, offset, type, misc, size);
        if (r) sideRecords.push(r);
        if (r?.type === PerfRecordType.LOST) lost += r.lost;
        return;
      }
      assert.equal(layout, sampling);
      archive.set(bytes.subarray(offset, offset + size), archived);
      archived += size;
      decodeSample(layout, view, offset, s);
      samples++;
      assert.equal(s.pid, w.pid);
      assert.equal(s.tid, w.pid);
      assert.equal(s.period, PERIOD_NS);
      assert.equal(s.cpu, ringCpu);
      assert.ok(s.time > (lastTime.get(s.cpu) ?? 0), `sample times increase on cpu ${s.cpu}`);
      lastTime.set(s.cpu, s.time);
      assert.ok(s.callchainLength > 0);
      assert.equal(size, layout.fixedSize + 8 + 8 * s.callchainLength);
      const n = copyChainWords(words, s.callchainOffset >>> 2, s.callchainLength, frameWords, 0, 128, false);
      assert.ok(n >= 1 && n < s.callchainLength, 'a chain holds at least one marker and one address');
      // The kernel stores the interrupted IP as the first entry of the chain.
      assert.equal(frames.getUint32(0, true), s.ipLo);
      assert.equal(frames.getUint32(4, true), s.ipHi);
      if ((misc & PerfRecordMisc.CPUMODE_MASK) === PerfRecordMisc.USER) {
        userSamples++;
        const ip = u64Of(frames, 0);
        if (ip >= textStart && ip < textEnd) inText++;
        if (n >= 3) deepChains++;
      } else {
        assert.equal(s.ipHi, 0xffffffff, 'a kernel-mode sample has a kernel address');
      }
    };

    let drainNs = 0n;
    let drained = 0;
    const drainAll = (): void => {
      const t0 = process.hrtime.bigint();
      rings.forEach((ring, i) => {
        ringCpu = cpus[i]!;
        drained += ring.drain(visit);
      });
      drainNs += process.hrtime.bigint() - t0;
    };
    const poll = setInterval(drainAll, 5);
    w.go();
    const cpuNs = Number(await w.nextLine());
    assert.equal(await w.exited, 0);
    clearInterval(poll);
    drainAll();
    for (const ring of rings) assert.equal(ring.pending(), 0);

    const expected = cpuNs / PERIOD_NS;
    console.log(`# ${samples} samples (${lost} lost) for ${(cpuNs / 1e6).toFixed(1)} ms of child CPU, ${expected.toFixed(0)} expected; ${userSamples} user mode, ${inText} in the workload's text, ${deepChains} with >= 3 user frames`);
    console.log(`# drain + decode + checks: ${((drained / Number(drainNs)) * 1e9).toFixed(0)} records/s`);
    assert.ok(samples + lost >= expected * 0.75 && samples + lost <= expected * 1.25, `${samples} + ${lost} lost samples for ${expected} periods of CPU time`);
    assert.ok(inText >= userSamples * 0.5, 'most user-mode samples hit the workload binary');
    assert.ok(deepChains >= userSamples * 0.5, 'user call chains go through leaf, middle, burn, main');
    const exit = sideRecords.find((r) => r.type === PerfRecordType.EXIT);
    assert.ok(exit && exit.type === PerfRecordType.EXIT && exit.pid === w.pid, 'the tracking event in the same ring reports the exit');

    // Decode speed alone of the general decoder (the collector reads samples in place,
    // md/perf-sample-source.ts), over the archived samples (enough passes for the JIT to settle).
    let decoded = 0;
    const t0 = process.hrtime.bigint();
    while (decoded < 1_000_000) {
      for (let at = 0; at < archived; at += archiveView.getUint16(at + 6, true)) {
        decodeSample(sampling, archiveView, at, s);
        copyChainWords(archiveWords, s.callchainOffset >>> 2, s.callchainLength, frameWords, 0, 128, false);
        decoded++;
      }
    }
    const ns = Number(process.hrtime.bigint() - t0);
    console.log(`# decodeSample + copyChainWords: ${((decoded / ns) * 1e9).toFixed(0)} samples/s (${(ns / decoded).toFixed(0)} ns each)`);
  } finally {
    for (const r of rings) r.close();
    for (const e of events) e.close();
  }
});

test('a tracking event reports fork, exec (comm with the exec bit, mmap2 of the binary) and exit', async () => {
  const w = await Workload.start(['forkexec']);
  const layout = SampleLayout.fromAttr(TRACKING);
  const events: PerfEvent[] = [];
  const rings: RingBuffer[] = [];
  const records: SideRecord[] = [];
  try {
    for (const cpu of onlineCpus()) {
      const ev = PerfEvent.open(TRACKING, { pid: w.pid, cpu });
      events.push(ev);
      rings.push(RingBuffer.map(ev, 16));
    }
    const visit = (bytes: Uint8Array, view: DataView, offset: number, type: number, misc: number, size: number): void => {
      const r = decodeSideRecord(layout, bytes, view, offset, type, misc, size);
      assert.ok(r, `record type ${type} is decoded`);
      records.push(r);
    };
    w.go();
    const grandchild = Number(await w.nextLine());
    assert.equal(await w.exited, 0);
    for (const ring of rings) ring.drain(visit);

    const fork = records.find((r) => r.type === PerfRecordType.FORK && r.pid === grandchild);
    assert.ok(fork && fork.type === PerfRecordType.FORK, 'FORK of the grandchild');
    assert.equal(fork.ppid, w.pid);
    assert.equal(fork.tid, grandchild);
    assert.equal(fork.ptid, w.pid);

    const comm = records.find((r) => r.type === PerfRecordType.COMM && r.pid === grandchild);
    assert.ok(comm && comm.type === PerfRecordType.COMM, 'COMM of the grandchild');
    assert.equal(comm.exec, true);
    assert.equal(comm.comm, path.basename(workload).slice(0, 15));
    assert.equal(comm.sampleId?.pid, grandchild);
    assert.ok(comm.sampleId!.time >= fork.time, 'exec follows fork');

    const mmap = records.find((r) => r.type === PerfRecordType.MMAP2 && r.pid === grandchild && r.filename === workload);
    assert.ok(mmap && mmap.type === PerfRecordType.MMAP2, `MMAP2 of ${workload} in the grandchild`);
    assert.ok((mmap.prot & 4) !== 0, 'the mapping reported is the executable one (PROT_EXEC)');
    assert.ok(mmap.len > 0n && mmap.addr > 0n);
    assert.ok(mmap.buildId !== null || mmap.ino > 0n);

    const exits = records.filter((r) => r.type === PerfRecordType.EXIT).map((r) => (r.type === PerfRecordType.EXIT ? r.pid : 0));
    assert.ok(exits.includes(grandchild), 'EXIT of the grandchild');
    assert.ok(exits.includes(w.pid), 'EXIT of the child');
    for (const r of records) {
      assert.ok(r.sampleId && r.sampleId.time > 0 && r.sampleId.id > 0, `record type ${r.type} has a sample_id trailer`);
    }
  } finally {
    for (const r of rings) r.close();
    for (const e of events) e.close();
  }
});

test('a one-page ring that wraps hands straddling records over whole', async () => {
  const w = await Workload.start(['busy', '200']);
  const attr = cpuClock(PERIOD_NS, false);
  const layout = SampleLayout.fromAttr(attr);
  const ev = PerfEvent.open(attr, { pid: w.pid, cpu: -1 });
  const ring = RingBuffer.map(ev, 1);
  try {
    const s = new SampleFields();
    const frameWords = new Int32Array(128 * 2);
    let position = 0;
    let straddled = 0;
    let samples = 0;
    let lastTime = 0;
    const visit = (_bytes: Uint8Array, view: DataView, offset: number, type: number, _misc: number, size: number, words: Int32Array): void => {
      // The test's own model of the stream: records follow each other from byte 0.
      const pos = position % ring.size;
      position += size;
      if (pos + size > ring.size) {
        straddled++;
        assert.equal(offset, 0, 'a straddling record is handed over from the scratch copy');
      } else {
        assert.equal(offset, pos);
      }
      if (type === PerfRecordType.LOST) return;
      assert.equal(type, PerfRecordType.SAMPLE);
      decodeSample(layout, view, offset, s);
      samples++;
      assert.equal(s.pid, w.pid);
      assert.equal(s.period, PERIOD_NS);
      assert.ok(s.time > lastTime);
      lastTime = s.time;
      assert.equal(size, layout.fixedSize + 8 + 8 * s.callchainLength);
      assert.ok(copyChainWords(words, s.callchainOffset >>> 2, s.callchainLength, frameWords, 0, 128, false) >= 1);
      assert.equal(frameWords[0] >>> 0, s.ipLo);
      assert.equal(frameWords[1] >>> 0, s.ipHi);
    };
    let done = false;
    void w.exited.then(() => (done = true));
    w.go();
    while (!done) {
      ring.drain(visit);
      await nextTurn();
    }
    ring.drain(visit);
    console.log(`# ${samples} samples through a ${ring.size}-byte ring, ${straddled} straddling its end`);
    assert.ok(position > ring.size * 4, 'the ring wrapped several times');
    assert.ok(straddled > 0, 'some records straddled the end of the ring');
  } finally {
    ring.close();
    ev.close();
  }
});

test('a staged drain copies the ring out first and hands over every record whole, wrapped or not', async () => {
  const w = await Workload.start(['busy', '200']);
  const attr = cpuClock(PERIOD_NS, false);
  const layout = SampleLayout.fromAttr(attr);
  const ev = PerfEvent.open(attr, { pid: w.pid, cpu: -1 });
  const ring = RingBuffer.map(ev, 1);
  try {
    const s = new SampleFields();
    let samples = 0;
    let lastTime = 0;
    let drained = 0;
    let expectedOffset = 0;
    const visit = (_bytes: Uint8Array, view: DataView, offset: number, type: number, _misc: number, size: number): void => {
      // Staged records lie one after the other from the start of the copy.
      assert.equal(offset, expectedOffset);
      expectedOffset += size;
      drained += size;
      if (type === PerfRecordType.LOST) return;
      assert.equal(type, PerfRecordType.SAMPLE);
      decodeSample(layout, view, offset, s);
      samples++;
      assert.equal(s.pid, w.pid);
      assert.ok(s.time > lastTime);
      lastTime = s.time;
      assert.equal(size, layout.fixedSize + 8 + 8 * s.callchainLength);
    };
    let done = false;
    void w.exited.then(() => (done = true));
    w.go();
    while (!done) {
      expectedOffset = 0;
      ring.drain(visit, Infinity, 0);
      await nextTurn();
    }
    expectedOffset = 0;
    ring.drain(visit, Infinity, 0);
    assert.ok(drained > ring.size * 4, 'the ring wrapped several times');
    assert.ok(samples > 0);
  } finally {
    ring.close();
    ev.close();
  }
});

test('a full ring that is not drained yields a LOST record with a positive count', async () => {
  const w = await Workload.start(['busy', '400']);
  const attr = cpuClock(20_000, false);
  const layout = SampleLayout.fromAttr(attr);
  const ev = PerfEvent.open(attr, { pid: w.pid, cpu: -1 });
  const ring = RingBuffer.map(ev, 1);
  try {
    const lost: number[] = [];
    let lostId = 0;
    const visit = (bytes: Uint8Array, view: DataView, offset: number, type: number, misc: number, size: number): void => {
      if (type !== PerfRecordType.LOST) return;
      const r = decodeSideRecord(layout, bytes, view, offset, type, misc, size);
      assert.ok(r && r.type === PerfRecordType.LOST);
      lost.push(r.lost);
      lostId = r.id;
    };
    let done = false;
    void w.exited.then(() => (done = true));
    w.go();
    await sleep(100);
    // The kernel writes LOST ahead of the first record that fits once space is freed.
    while (!done && lost.length === 0) {
      ring.drain(visit);
      await sleep(5);
    }
    ring.drain(visit);
    await w.exited;
    console.log(`# LOST records: ${lost.join(', ')}`);
    assert.ok(lost.length > 0, 'a LOST record');
    assert.ok(lost.every((n) => n > 0));
    assert.equal(lostId, Number(ev.id()));
  } finally {
    ring.close();
    ev.close();
  }
});

test('a ring over the locked-memory limit of an unprivileged user fails with EPERM naming perf_event_mlock_kb', (t) => {
  if (process.getuid?.() !== 0) return t.skip('needs root to run the probe as nobody');
  // The kernel lets one user lock perf_event_mlock_kb per online CPU, then charges RLIMIT_MEMLOCK (0 here).
  const limitPages = (Number(readFileSync('/proc/sys/kernel/perf_event_mlock_kb', 'utf8')) / 4) * onlineCpus().length;
  let pages = 1;
  while (pages <= limitPages) pages *= 2;
  const modules = (name: string): string => fileURLToPath(new URL(`../src/md/${name}.js`, import.meta.url));
  const probe = `
    const { PerfEvent } = await import(${JSON.stringify(modules('perf-event'))});
    const { RingBuffer } = await import(${JSON.stringify(modules('ring-buffer'))});
    const ev = PerfEvent.open({ type: 1, config: 0n, samplePeriod: 100000n, sampleType: 1n, flags: { excludeKernel: true } }, { pid: 0, cpu: -1 });
    try { RingBuffer.map(ev, ${pages}); console.log(JSON.stringify({ mapped: true })); }
    catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`;
  let out: string;
  try {
    out = execFileSync('prlimit', ['--memlock=0:0', 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, '--input-type=module', '-e', probe], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (e) {
    // Only a missing prlimit/setpriv or a tree nobody may not read is a reason to skip.
    const err = e as { code?: string; stderr?: string };
    if (err.code === 'ENOENT' || /EACCES|Permission denied/.test(err.stderr ?? '')) {
      return t.skip(`cannot run the probe as nobody: ${err.code ?? err.stderr!.split('\n')[0]}`);
    }
    throw e;
  }
  const result = JSON.parse(out) as { mapped?: boolean; code?: string; message?: string };
  assert.equal(result.mapped, undefined, `${pages} pages over a limit of ${limitPages} mapped`);
  assert.equal(result.code, 'EPERM');
  assert.match(result.message!, /perf_event_mlock_kb/);
});

test('drain bounds its work by maxBytes, a throwing visitor consumes only its record, a closed ring refuses', () => {
  assert.throws(() => RingBuffer.map({ fd: -1 } as PerfEvent, 3), (e) => isPmcError(e, 'EINVAL') && /power of two/.test(e.message));
  // Samples of this very thread, taken while it burns CPU with the event on.
  const ev = PerfEvent.open({ type: PerfType.SOFTWARE, config: 0n, samplePeriod: BigInt(PERIOD_NS), sampleType: PerfSample.IP | PerfSample.TID }, { pid: 0, cpu: -1 });
  const ring = RingBuffer.map(ev, 8);
  try {
    const until = process.cpuUsage().user + 30_000;
    while (process.cpuUsage().user < until);
    ev.disable();
    const before = ring.pending();
    assert.ok(before > 0);

    let thrownSize = 0;
    assert.throws(
      () =>
        ring.drain((_b, _v, _o, _t, _m, size) => {
          thrownSize = size;
          throw new Error('visitor failed');
        }),
      /visitor failed/,
    );
    assert.equal(ring.pending(), before - thrownSize);

    const sizes: number[] = [];
    const visitSize = (_b: Uint8Array, _v: DataView, _o: number, _t: number, _m: number, size: number): void => void sizes.push(size);
    assert.equal(ring.drain(visitSize, 1), 1);
    assert.equal(ring.pending(), before - thrownSize - sizes[0]!);
    const rest = ring.drain(visitSize);
    assert.ok(rest >= 1);
    assert.equal(ring.pending(), 0);
    assert.equal(sizes.reduce((a, b) => a + b, thrownSize), before);
  } finally {
    ring.close();
    ev.close();
  }
  assert.throws(() => ring.pending(), (e) => isPmcError(e, 'EBADF'));
  assert.throws(() => ring.drain(() => undefined), (e) => isPmcError(e, 'EBADF'));
});
