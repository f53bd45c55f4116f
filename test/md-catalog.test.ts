// Event discovery and resolution against this machine's kernel, sysfs and
// tracefs. Expected values come from the machine (sysfs files, tracefs ids,
// what perf(1) itself encodes for a name), never from the code under test.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import { onlineCpus, possibleCpuCount } from '../src/os/cpus.js';
import type { EventClassInfo, PerfConfig } from '../src/md/event-class.js';
import { discoverEventClasses } from '../src/md/event-families.js';
import { resolveEvent } from '../src/md/event-resolve.js';
import type { PmuClass } from '../src/md/pmu-class.js';
import { PerfEvent } from '../src/md/perf-event.js';
import { isPmcError } from '../src/pmc-error.js';

/** Whether the kernel opens a hardware event here (a PMU, not a VM without one). */
function hardwarePmu(): boolean {
  try {
    PerfEvent.open({ type: 0, config: 0n, flags: { excludeKernel: true } }, { pid: 0, cpu: -1 }).close();
    return true;
  } catch {
    return false;
  }
}

const PMU_DIR = '/sys/bus/event_source/devices';
const TRACEFS = '/sys/kernel/tracing';
const isRoot = process.getuid?.() === 0;
const hasPerf = spawnSync('perf', ['--version']).status === 0;
const familiesModule = fileURLToPath(new URL('../src/md/event-families.js', import.meta.url));
const resolveModule = fileURLToPath(new URL('../src/md/event-resolve.js', import.meta.url));

const classes = discoverEventClasses();
const cls = (name: string): EventClassInfo => {
  const c = classes.find((x) => x.name === name);
  assert.ok(c, `class ${name} listed`);
  return c;
};

/** type/config of the first perf_event_attr that `perf stat -vv -e <event>` prints (perf omits zero fields). */
function perfEncoding(event: string): { type: number; config: bigint } {
  const r = spawnSync('perf', ['stat', '-vv', '-e', event, 'true'], { encoding: 'utf8' });
  const out = `${r.stderr}${r.stdout}`;
  const start = out.indexOf('perf_event_attr:');
  assert.ok(start >= 0, `perf printed an attr for ${event}:\n${out}`);
  const block = out.slice(start, out.indexOf('sys_perf_event_open', start));
  const type = /^\s+type\s+(\d+)$/m.exec(block);
  const config = /^\s+config\s+(0x[0-9a-f]+)$/m.exec(block);
  return { type: type ? Number(type[1]) : 0, config: config ? BigInt(config[1]!) : 0n };
}

function assertThrowsPmc(fn: () => unknown, code: string, ...fragments: string[]): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(isPmcError(e), `PmcError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    for (const f of fragments) assert.ok(e.message.includes(f), `message "${e.message}" mentions "${f}"`);
    return true;
  });
}

/** Counts in this thread for the duration of `work`, with the exclude bits the class allows. */
function countDuring(perf: PerfConfig, kernelToo: boolean, work: () => void): bigint {
  const ev = PerfEvent.open(
    { ...perf, flags: { disabled: true, excludeKernel: !kernelToo, excludeHv: !kernelToo } },
    { pid: 0, cpu: -1 },
  );
  try {
    ev.enable();
    work();
    ev.disable();
    return ev.read().value;
  } finally {
    ev.close();
  }
}

/** This thread's time on a CPU, in ns (schedstat's first field). */
function threadCpuNs(): number {
  return Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]);
}

/**
 * Spins until this thread has run `ms` on a CPU. Wall time says nothing on a
 * loaded machine, and the process's CPU time includes V8's other threads.
 */
function busyCpu(ms: number): void {
  const start = threadCpuNs();
  while (threadCpuNs() - start < ms * 1e6) {
    /* spin */
  }
}

const SOFT_NAMES = [
  'cpu-clock',
  'task-clock',
  'page-faults',
  'context-switches',
  'cpu-migrations',
  'minor-faults',
  'major-faults',
  'alignment-faults',
  'emulation-faults',
];

test('classes come in lookup order, each PMU of sysfs listed once', () => {
  assert.deepEqual(
    classes.slice(0, 4).map((c) => c.family),
    ['SOFT', 'HW', 'CACHE', 'TRACEPOINT'],
  );
  const pmus = classes.filter((c) => c.family === 'PMU');
  const sysfs = spawnSync('ls', [PMU_DIR], { encoding: 'utf8' })
    .stdout.split('\n')
    .filter((n) => n && n !== 'software' && n !== 'tracepoint');
  assert.deepEqual(pmus.map((c) => c.name).sort(), sysfs.sort());
  for (const p of pmus) {
    assert.equal(p.perfType, Number(readFileSync(`${PMU_DIR}/${p.name}/type`, 'utf8')), `${p.name} type`);
    if (!p.available) assert.ok(p.unavailableReason, `${p.name} says why it is unavailable`);
  }
  assert.equal(discoverEventClasses(), classes, 'cached per process');
});

test('SOFT lists the named software events and each opens and counts', () => {
  const soft = cls('SOFT');
  assert.equal(soft.available, true);
  assert.equal(soft.perfType, 1);
  assert.equal(soft.canSample, true, 'cpu-clock sampling works here');
  const names = soft.events().map((e) => e.name);
  for (const n of SOFT_NAMES) assert.ok(names.includes(n), `${n} listed`);
  for (const n of SOFT_NAMES) {
    const { cls: c, event } = resolveEvent(classes, n);
    assert.equal(c, soft);
    assert.equal(event.perf.type, 1);
    assert.equal(event.code, Number(event.perf.config), 'SOFT code is the perf config');
  }
  // The clocks advance while this thread spins: the configs really are those clocks.
  for (const n of ['cpu-clock', 'task-clock']) {
    const ns = countDuring(resolveEvent(classes, n).event.perf, false, () => busyCpu(20));
    assert.ok(ns >= 10_000_000n, `${n} counted ${ns} ns over 20 ms of CPU`);
  }
  const faults = countDuring(resolveEvent(classes, 'page-faults').event.perf, false, () => {
    Buffer.alloc(8 << 20).fill(1); // fresh pages fault on first touch
  });
  assert.ok(faults > 0n, `page-faults counted ${faults}`);
});

test('SOFT, HW and CACHE events and their aliases encode as perf encodes them', { skip: !hasPerf && 'perf not installed' }, () => {
  for (const family of ['SOFT', 'HW', 'CACHE']) {
    for (const e of cls(family).events()) {
      if (family === 'SOFT' && !SOFT_NAMES.includes(e.name)) continue;
      for (const name of [e.name, ...(e.aliases ?? [])]) {
        // HW and CACHE are unavailable here, so resolution refuses them; the listing still carries the encoding.
        const c = cls(family);
        const event = c.available ? resolveEvent([c], name).event : c.findEvent!(name, false);
        assert.equal(event, e, `${name} finds its listed event`);
        const perf = perfEncoding(name);
        assert.equal(e.perf.type, perf.type, `${name} type`);
        assert.equal(e.perf.config, perf.config, `${name} config`);
      }
    }
  }
});

test('HW and CACHE are listed but unavailable, with the probe errno as reason', { skip: hardwarePmu() && 'this machine has a hardware PMU: HW and CACHE are available' }, () => {
  // What the kernel says here, independently of the catalog.
  assertThrowsPmc(() => PerfEvent.open({ type: 0, config: 0n, flags: { excludeKernel: true } }, { pid: 0, cpu: -1 }), 'ENOENT');
  for (const name of ['HW', 'CACHE']) {
    const c = cls(name);
    assert.equal(c.available, false);
    assert.equal(c.canSample, false);
    assert.match(c.unavailableReason ?? '', /ENOENT/);
    assert.ok(c.events().length > 0, `${name} still lists its events`);
  }
  const reason = cls('HW').unavailableReason!;
  for (const name of ['cycles', 'instructions', 'HW-branch-misses']) assertThrowsPmc(() => resolveEvent(classes, name), 'ENOENT', reason);
  // The errno is said once: the reason already ends with it.
  assert.throws(() => resolveEvent(classes, 'cycles'), (e: Error) => e.message.match(/ENOENT/g)?.length === 1);
  assertThrowsPmc(() => resolveEvent(classes, 'L1-dcache-load-misses'), 'ENOENT', cls('CACHE').unavailableReason!);
});

test('tracepoints resolve to their tracefs id, loosely and with the class prefix', { skip: !isRoot && 'tracefs is root-only' }, async () => {
  const tp = cls('TRACEPOINT');
  assert.equal(tp.available, true, tp.unavailableReason);
  assert.equal(tp.canSample, true);
  const id = Number(readFileSync(`${TRACEFS}/events/sched/sched_switch/id`, 'utf8'));
  const { cls: c, event } = resolveEvent(classes, 'sched:sched_switch');
  assert.equal(c, tp);
  assert.equal(event.code, id);
  assert.deepEqual(event.perf, { type: 2, config: BigInt(id) });
  assert.deepEqual({ ...event }, { name: 'sched:sched_switch', code: id, perf: { type: 2, config: BigInt(id) } }, 'a copy keeps code and perf');
  for (const spelling of ['SCHED:SCHED-SWITCH', 'sched:sched.switch', 'TRACEPOINT-sched:sched_switch']) {
    assert.equal(resolveEvent(classes, spelling).event, event, spelling);
  }
  if (hasPerf) assert.deepEqual(perfEncoding('sched:sched_switch'), { type: 2, config: BigInt(id) });
  assert.equal(tp.eventName(id), 'sched:sched_switch');

  // It counts this thread's switches: each sleep gives the CPU away.
  const ev = PerfEvent.open({ ...event.perf, flags: { disabled: true } }, { pid: 0, cpu: -1 });
  try {
    ev.enable();
    for (let i = 0; i < 3; i++) spawnSync('sleep', ['0.01']);
    ev.disable();
    assert.ok(ev.read().value >= 3n, 'sched_switch counted the waits');
  } finally {
    ev.close();
  }
});

test('the tracepoint list is the kernel list, and listing reads no ids', { skip: !isRoot && 'tracefs is root-only' }, () => {
  const tp = cls('TRACEPOINT');
  const expected = readFileSync(`${TRACEFS}/available_events`, 'utf8').split('\n').filter(Boolean).sort();
  const listed = tp.events().map((e) => e.name);
  assert.deepEqual(listed, expected);
  const some = tp.events().find((e) => e.name.startsWith('syscalls:') || e.name.startsWith('irq:'))!;
  const [s, e] = some.name.split(':');
  assert.equal(some.code, Number(readFileSync(`${TRACEFS}/events/${s}/${e}/id`, 'utf8')));
  assert.equal(resolveEvent(classes, some.name).event, some, 'one object per tracepoint per run');
});

test('msr/tsc/ resolves through the events/tsc alias and the format fields', { skip: !existsSync(`${PMU_DIR}/msr`) && 'no msr PMU' }, () => {
  const msr = cls('msr');
  assert.equal(msr.available, true, msr.unavailableReason);
  const type = Number(readFileSync(`${PMU_DIR}/msr/type`, 'utf8'));
  // config from the alias text through the format file, computed here from the sysfs text.
  const alias = readFileSync(`${PMU_DIR}/msr/events/tsc`, 'utf8').trim(); // "event=0x00"
  const [term, value] = alias.split('=');
  const fmt = readFileSync(`${PMU_DIR}/msr/format/${term}`, 'utf8').trim(); // "config:0-63"
  const [, lo] = /^config:(\d+)-\d+$/.exec(fmt)!;
  const config = BigInt(value!) << BigInt(lo!);

  const { cls: c, event } = resolveEvent(classes, 'msr/tsc/');
  assert.equal(c, msr);
  assert.equal(event.name, 'tsc');
  assert.deepEqual(event.perf, { type, config });
  assert.equal(event.code, msr.events().findIndex((e) => e.name === 'tsc'));
  if (hasPerf) assert.deepEqual(perfEncoding('msr/tsc/'), { type, config });
  for (const spelling of ['tsc', 'msr-tsc', 'MSR/TSC/']) assert.equal(resolveEvent(classes, spelling).event, event, spelling);

  // The same config written as a format term: a raw spec with its own code that names itself back.
  const raw = resolveEvent(classes, `msr/${term}=${value}/`).event;
  assert.deepEqual(raw.perf, event.perf);
  assert.ok(raw.code >= 0x80000000, 'raw spec codes stay clear of alias indexes');
  assert.equal(msr.eventName(raw.code, raw.perf), `msr/${term}=0x0/`);
  const five = resolveEvent(classes, 'msr/tsc,event=5/').event; // later terms override the alias
  assert.equal(five.perf.config, 5n << BigInt(lo!));
  assert.equal(msr.eventName(five.code, five.perf), `msr/${term}=0x5/`);

  // msr counts every mode at once and cannot sample: what the kernel says when asked directly.
  assert.equal(msr.modeFilter, false);
  assertThrowsPmc(() => PerfEvent.open({ ...event.perf, flags: { excludeKernel: true } }, { pid: 0, cpu: -1 }), 'EINVAL');
  assert.equal(msr.canSample, false);
  assertThrowsPmc(() => PerfEvent.open({ ...event.perf, samplePeriod: 1_000_000n }, { pid: 0, cpu: -1 }), 'EINVAL');
  const ticks = countDuring(event.perf, true, () => busyCpu(5));
  assert.ok(ticks > 0n, `tsc advanced ${ticks}`);
});

test('PMU term specs fail clearly: missing PMU, too-wide value, unknown term', { skip: !existsSync(`${PMU_DIR}/msr`) && 'no msr PMU' }, () => {
  if (!existsSync(`${PMU_DIR}/cpu`)) assertThrowsPmc(() => resolveEvent(classes, 'cpu/event=0x3c/'), 'ENOENT', 'no PMU named "cpu"', 'msr');
  const fmt = readFileSync(`${PMU_DIR}/msr/format/event`, 'utf8').trim();
  const [, lo, hi] = /^config:(\d+)-(\d+)$/.exec(fmt)!;
  const width = Number(hi) - Number(lo) + 1;
  const tooWide = `0x${(1n << BigInt(width)).toString(16)}`;
  assertThrowsPmc(() => resolveEvent(classes, `msr/event=${tooWide}/`), 'EINVAL', '"event"', `${width}-bit`);
  const widest = `0x${((1n << BigInt(width)) - 1n).toString(16)}`;
  assert.equal(resolveEvent(classes, `msr/event=${widest}/`).event.perf.config, ((1n << BigInt(width)) - 1n) << BigInt(lo!));
  assertThrowsPmc(() => resolveEvent(classes, 'msr/umask=1/'), 'EINVAL', '"umask"', 'event');
  assertThrowsPmc(() => resolveEvent(classes, 'msr/event=zz/'), 'EINVAL', '"event"', '0x hex');
  assertThrowsPmc(() => resolveEvent(classes, 'msr/tsc'), 'EINVAL', 'pmu/term=value');
  assertThrowsPmc(() => resolveEvent(classes, 'msr//'), 'EINVAL', 'no terms');
});

test('unknown names fail with ENOENT and close matches', () => {
  assertThrowsPmc(() => resolveEvent(classes, 'task-clok'), 'ENOENT', 'task-clock');
  assertThrowsPmc(() => resolveEvent(classes, 'contxt-switches'), 'ENOENT', 'context-switches');
  assertThrowsPmc(() => resolveEvent(classes, 'no-such-event-anywhere'), 'ENOENT', 'no-such-event-anywhere');
  if (isRoot) assertThrowsPmc(() => resolveEvent(classes, 'sched_swich'), 'ENOENT', 'sched:sched_switch');
  assertThrowsPmc(() => resolveEvent(classes, '  '), 'EINVAL');
});

test('SOFT names match loosely and with the class prefix', () => {
  const faults = resolveEvent(classes, 'page-faults').event;
  for (const spelling of ['faults', 'PAGE_FAULTS', 'Page.Faults', 'page faults', 'SOFT-page-faults', 'soft_faults']) {
    assert.equal(resolveEvent(classes, spelling).event, faults, spelling);
  }
});

test('breakpoint and probe PMUs are listed as unavailable with why, formats kept', () => {
  for (const name of ['breakpoint', 'kprobe', 'uprobe']) {
    if (!existsSync(`${PMU_DIR}/${name}`)) continue;
    const c = cls(name);
    assert.equal(c.available, false);
    assert.ok((c.unavailableReason ?? '').length > 20, c.unavailableReason);
  }
  if (existsSync(`${PMU_DIR}/uprobe/format/retprobe`)) {
    const f = (cls('uprobe') as PmuClass).formats().find((x) => x.name === 'retprobe')!;
    assert.equal(f.spec, readFileSync(`${PMU_DIR}/uprobe/format/retprobe`, 'utf8').trim());
  }
});

test('onlineCpus agrees with the OS; possibleCpuCount covers them', () => {
  const online = onlineCpus();
  assert.equal(online.length, cpus().length);
  assert.ok(possibleCpuCount() > Math.max(...online));
});

/** Runs a script in a fresh node (discovery is cached per process); returns its stdout. */
function runFresh(script: string, wrap: string[] = []): string {
  const [cmd, ...args] = [...wrap, process.execPath, '--input-type=module', '-e', script];
  const r = spawnSync(cmd!, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
}

test('discovery time at startup (reported, not asserted)', (t) => {
  const script = `
    const t0 = performance.now();
    const m = await import(${JSON.stringify(familiesModule)});
    const t1 = performance.now();
    m.discoverEventClasses();
    const t2 = performance.now();
    console.log(JSON.stringify({ importMs: t1 - t0, discoverMs: t2 - t1 }));`;
  const runs = [0, 1, 2, 3, 4].map(() => JSON.parse(runFresh(script)) as { importMs: number; discoverMs: number });
  const fmt = (xs: number[]): string => xs.map((x) => x.toFixed(1)).join(', ');
  t.diagnostic(`discoverEventClasses(): ${fmt(runs.map((r) => r.discoverMs))} ms; module import (koffi load): ${fmt(runs.map((r) => r.importMs))} ms`);
});

test('an unprivileged user gets SOFT, and reasons for the rest', { skip: (!isRoot || spawnSync('setpriv', ['--version']).status !== 0) && 'needs root and setpriv' }, () => {
  const script = `
    const m = await import(${JSON.stringify(familiesModule)});
    const r = await import(${JSON.stringify(resolveModule)});
    const cs = m.discoverEventClasses();
    console.log(JSON.stringify(cs.map((c) => [c.name, c.available, c.unavailableReason ?? null])));
    r.resolveEvent(cs, 'page-faults');`;
  const out = JSON.parse(runFresh(script, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups'])) as [string, boolean, string | null][];
  const byName = new Map(out.map(([n, a, r]) => [n, { a, r }]));
  assert.equal(byName.get('SOFT')!.a, true);
  const tp = byName.get('TRACEPOINT')!;
  if (!tp.a) assert.match(tp.r ?? '', /EACCES|not permitted|root/);
  for (const [, a, r] of out) if (!a) assert.ok(r, 'every unavailable class says why');
});

test('tracefs is mounted when it is not (private mount namespace)', { skip: (!isRoot || spawnSync('unshare', ['--version']).status !== 0) && 'needs root and unshare' }, () => {
  const script = `
    const m = await import(${JSON.stringify(familiesModule)});
    const r = await import(${JSON.stringify(resolveModule)});
    const cs = m.discoverEventClasses();
    console.log(JSON.stringify({ tp: cs.find((c) => c.name === 'TRACEPOINT').available, id: r.resolveEvent(cs, 'sched:sched_switch').event.code }));`;
  const inner = `umount ${TRACEFS} 2>/dev/null; test -e ${TRACEFS}/events && exit 3; exec "$@"`;
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', inner, 'sh', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout) as { tp: boolean; id: number };
  assert.equal(got.tp, true);
  assert.equal(got.id, Number(readFileSync(`${TRACEFS}/events/sched/sched_switch/id`, 'utf8')));
});

test('resolving one software event asks the kernel about that event, not the whole catalog', { skip: (!isRoot || !hasPerf || !existsSync(`${TRACEFS}/events/syscalls/sys_enter_perf_event_open`)) && 'needs root, perf and the syscalls tracepoints' }, () => {
  // The kernel counts the fresh process's perf_event_open calls (perf's own are not in the child).
  const opens = (work: string): number => {
    const script = `
      const m = await import(${JSON.stringify(familiesModule)});
      const r = await import(${JSON.stringify(resolveModule)});
      const cs = m.discoverEventClasses();
      ${work}`;
    const r = spawnSync('perf', ['stat', '-x,', '-e', 'syscalls:sys_enter_perf_event_open', '--', process.execPath, '--input-type=module', '-e', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const line = r.stderr.split('\n').find((l) => l.includes('sys_enter_perf_event_open'));
    assert.ok(line, r.stderr);
    return Number(line.split(',')[0]);
  };
  const one = opens(`r.resolveEvent(cs, 'task-clock');`);
  const all = opens(`r.resolveEvent(cs, 'task-clock'); for (const c of cs) { c.events(); c.canSample; }`);
  // task-clock itself, and cpu-clock that stands for SOFT being available.
  assert.ok(one >= 1 && one <= 2, `${one} perf_event_open calls to resolve task-clock`);
  const listed = cls('SOFT').events().length + cls('HW').events().length + cls('CACHE').events().length;
  assert.ok(all >= listed, `${all} perf_event_open calls to list every class (${listed} generic events)`);
});

test("md loads koffi's binary alone, not the build tools its entry point loads (https, zlib)", () => {
  const native = fileURLToPath(new URL('../src/md/native.js', import.meta.url));
  const script = `
    const before = new Set(process.moduleLoadList);
    const m = await import(${JSON.stringify(native)});
    const fd = m.perfEventOpen(Buffer.alloc(128), 0, -1, -1, 0); // a working binding: EINVAL for an empty attr
    console.log(JSON.stringify({ fd, loaded: process.moduleLoadList.filter((x) => !before.has(x)) }));`;
  const { fd, loaded } = JSON.parse(runFresh(script)) as { fd: number; loaded: string[] };
  assert.ok(fd < 0, `perf_event_open of an empty attr failed (${fd})`);
  for (const heavy of ['https', 'zlib', 'crypto', 'tls']) assert.ok(!loaded.includes(`NativeModule ${heavy}`), `${heavy} is not loaded`);
});
