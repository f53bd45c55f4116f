import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { analyzeLog } from '../src/report/analyze.js';
import { Symbolizer } from '../src/report/symbolizer.js';
import { readOwnVdso } from '../src/report/vdso.js';
import { formatFolded } from '../src/report/write-folded.js';
import type { LogRecord } from '../src/log/records.js';
import { buildProgram, libcPath, nmSymbols, pcIn, rec, retIn, sym, tempDir, text } from './report-fixture.js';

const dir = tempDir('report-sym-');
const pie = buildProgram(dir, 'prog-pie', ['-pie', '-fPIE']);
const nopie = buildProgram(dir, 'prog-nopie', ['-no-pie']);
const PIE_BASE = 0x5555_5555_4000n;
const NOPIE_BASE = BigInt(nopie.linkBase);

function symbolizerWith(records: LogRecord[], options = {}): Symbolizer {
  const s = new Symbolizer(options);
  for (const r of records) s.processes.apply(r);
  return s;
}

test('PIE and non-PIE executables: sampled PC and return addresses resolve to their functions', () => {
  for (const [prog, base] of [[pie, PIE_BASE], [nopie, NOPIE_BASE]] as const) {
    const s = symbolizerWith([rec.mapIn(10, base, prog.path)]);
    const pc = pcIn(prog, base, 'inner', 7);
    const r = s.symbolize(10, pc);
    assert.deepEqual(r, { image: prog.path, symbol: 'inner', offset: 7, name: 'inner' });
    assert.equal(s.symbolize(10, retIn(prog, base, 'outer'), true).symbol, 'outer');
    // A call as the last instruction returns to the next function's first byte: looked up at pc - 1.
    const end = pcIn(prog, base, 'outer', sym(prog, 'outer').size);
    assert.equal(s.symbolize(10, end, true).symbol, 'outer');
    assert.equal(s.symbolize(10, end, false).symbol, 'other', 'as a sampled PC the same address is the next function');
  }
});

test('-r root: executables are read under another root directory', () => {
  const root = join(dir, 'sysroot');
  mkdirSync(join(root, 'usr/bin'), { recursive: true });
  copyFileSync(pie.path, join(root, 'usr/bin/app'));
  const s = symbolizerWith([rec.mapIn(14, PIE_BASE, '/usr/bin/app')], { root });
  assert.deepEqual(s.symbolize(14, pcIn(pie, PIE_BASE, 'outer', 1)), { image: '/usr/bin/app', symbol: 'outer', offset: 1, name: 'outer' });
});

test('a shared library (libc) resolves getpid', () => {
  const libc = libcPath();
  const base = 0x7f00_1234_0000n;
  const s = symbolizerWith([rec.mapIn(11, base, libc)]);
  const getpid = nmSymbols(libc, ['-D']).get('getpid')!;
  const r = s.symbolize(11, base + BigInt(getpid.addr) + 3n);
  assert.equal(r.image, libc);
  assert.equal(r.symbol, 'getpid');
  assert.equal(r.offset, 3);
});

test('kernel addresses resolve through kallsyms (a copy, and /proc/kallsyms when readable)', (t) => {
  const copy = join(dir, 'kallsyms');
  writeFileSync(copy, [
    'ffffffff81000000 T _stext',
    'ffffffff81000100 t local_helper',
    'ffffffff81000200 T do_syscall_64',
    'ffffffff81000300 D some_data',
    'ffffffffc0001000 t mod_func\t[mymod]',
    '',
  ].join('\n'));
  const s = symbolizerWith([], { kallsyms: copy });
  assert.equal(s.symbolize(1, 0xffffffff81000250n).symbol, 'do_syscall_64');
  assert.equal(s.symbolize(1, 0xffffffff81000250n).image, '[kernel.kallsyms]');
  assert.equal(s.symbolize(1, 0xffffffff810001ffn).symbol, 'local_helper');
  assert.deepEqual(s.symbolize(1, 0xffffffffc0001004n), { image: '[mymod]', symbol: 'mod_func', offset: 4, name: 'mod_func' });

  const lines = readFileSync('/proc/kallsyms', 'latin1').split('\n');
  const text = lines.map((l) => l.split(/\s+/)).filter((f) => /^[Tt]$/.test(f[1] ?? '') && !/^0+$/.test(f[0]));
  if (text.length === 0) {
    t.skip('kernel addresses are hidden from this user');
    return;
  }
  // A symbol alone at its address, with a later symbol, so its name is the only answer.
  const counts = new Map<string, number>();
  for (const f of text) counts.set(f[0], (counts.get(f[0]) ?? 0) + 1);
  const pick = text.find((f, i) => counts.get(f[0]) === 1 && i + 1 < text.length && text[i + 1][0] > f[0])!;
  const live = new Symbolizer({ cacheDir: null });
  const r = live.symbolize(0, BigInt('0x' + pick[0]) + 1n);
  assert.equal(r.symbol, pick[2]);
  assert.equal(r.offset, 1);
});

test('hidden kernel addresses (kptr_restrict) are reported, and kernel frames print as addresses', () => {
  const hidden = join(dir, 'kallsyms-hidden');
  writeFileSync(hidden, '0000000000000000 T _stext\n0000000000000000 T do_syscall_64\n');
  const s = symbolizerWith([], { kallsyms: hidden });
  assert.deepEqual(s.symbolize(1, 0xffffffff81000250n), { image: null, symbol: null, offset: 0, name: '0xffffffff81000250' });
  assert.match(s.loader.problems.get(hidden) ?? '', /hidden/);
});

test('JIT code resolves through /tmp/perf-PID.map style files', () => {
  writeFileSync(join(dir, 'perf-4242.map'), [
    '3a00000 80 Builtin:ArgumentsAdaptorTrampoline',
    '3a00100 40 LazyCompile:*fib /srv/app.js:3:13',
    '3a00200 40 Function:a\u2028b\u2029c',
    'garbage line',
    '',
  ].join('\n'));
  const s = symbolizerWith([], { perfMapDir: dir });
  const r = s.symbolize(4242, 0x3a00110n);
  assert.equal(r.symbol, 'LazyCompile:*fib /srv/app.js:3:13');
  assert.equal(r.image, join(dir, 'perf-4242.map'));
  assert.equal(r.offset, 0x10);
  assert.equal(s.symbolize(4242, 0x3a00140n).symbol, null, 'past the code object');
  assert.equal(s.symbolize(4242, 0x3a00201n).symbol, 'Function:a\u2028b\u2029c', 'a name with line separators (not newlines)');
  assert.match(s.loader.problems.get(join(dir, 'perf-4242.map')) ?? '', /1 lines/);
});

test('the vdso resolves clock_gettime', () => {
  const copy = join(dir, 'vdso.so');
  writeFileSync(copy, readOwnVdso());
  const dyn = nmSymbols(copy, ['-D']);
  const cg = dyn.get('clock_gettime') ?? dyn.get('__vdso_clock_gettime')!;
  const base = 0x7ffd_0000_0000n;
  const s = symbolizerWith([rec.mapIn(12, base, '[vdso]')]);
  const r = s.symbolize(12, base + BigInt(cg.addr) + 4n);
  assert.equal(r.image, '[vdso]');
  assert.ok(r.symbol === 'clock_gettime' || r.symbol === '__vdso_clock_gettime', String(r.symbol));
});

test('unknown addresses: image+0xoffset inside an image without a symbol, 0xaddr elsewhere; missing files are counted', () => {
  const stripped = join(dir, 'prog-stripped');
  execFileSync('strip', ['-o', stripped, pie.path]);
  const s = symbolizerWith([rec.mapIn(13, PIE_BASE, stripped), rec.mapIn(13, 0x7f55_0000_0000n, '/no/such/lib.so')]);
  const main = sym(pie, 'main');
  const r = s.symbolize(13, pcIn(pie, PIE_BASE, 'main', 4));
  assert.equal(r.symbol, null);
  assert.equal(r.name, `prog-stripped+0x${(main.addr + 4 - pie.linkBase).toString(16)}`);
  assert.equal(s.symbolize(13, 0x7f55_0000_0040n).name, 'lib.so+0x40');
  assert.equal(s.symbolize(13, 0x1234_5678n).name, '0x12345678');
  assert.equal(s.symbolize(13, 0xffff_ffff_8100_0000n, false).image, '[kernel.kallsyms]');
  assert.match(s.loader.problems.get('/no/such/lib.so') ?? '', /ENOENT/);
});

test('MAP_OUT unmaps; fork copies the parent; exec replaces the child image', async () => {
  const P = 300;
  const C = 301;
  // The fixture stamps records in creation order.
  const records: LogRecord[] = [
    rec.allocDyn(1, 'cpu-clock'),
    rec.exec(P, nopie.path),
    rec.mapIn(P, NOPIE_BASE, nopie.path),
    rec.fork(P, C),
    // The child before its exec runs the parent's image.
    rec.callchain(C, 1, [pcIn(nopie, NOPIE_BASE, 'other', 2)]),
  ];
  const childExec = rec.exec(C, pie.path);
  records.push(
    childExec,
    rec.mapIn(C, PIE_BASE, pie.path),
    // Logged after the exec but taken before it (its timestamp says so): the old image.
    { ...rec.callchain(C, 1, [pcIn(nopie, NOPIE_BASE, 'outer', 2)]), ts: childExec.ts - 1 },
    rec.callchain(C, 1, [pcIn(pie, PIE_BASE, 'inner', 2), retIn(pie, PIE_BASE, 'outer'), retIn(pie, PIE_BASE, 'main')]),
    rec.callchain(P, 1, [pcIn(nopie, NOPIE_BASE, 'inner', 2), retIn(nopie, NOPIE_BASE, 'other'), retIn(nopie, NOPIE_BASE, 'main')]),
    rec.exit(C),
    // Samples read after the exit still resolve.
    rec.callchain(C, 1, [pcIn(pie, PIE_BASE, 'main', 1)]),
    rec.mapOut(P, NOPIE_BASE, NOPIE_BASE + 0x10000n),
    rec.callchain(P, 1, [pcIn(nopie, NOPIE_BASE, 'main', 1)]),
  );
  const result = await analyzeLog(records, { perfMapDir: dir });
  const folded = text(formatFolded(result)).trim().split('\n').sort();
  const mainAddr = (BigInt(sym(nopie, 'main').addr) + 1n).toString(16);
  assert.deepEqual(folded, [
    `${basename(nopie.path)};0x${mainAddr} 1`,
    `${basename(nopie.path)};main;other;inner 1`,
    `${basename(nopie.path)};other 1`,
    `${basename(nopie.path)};outer 1`,
    `${basename(pie.path)};main 1`,
    `${basename(pie.path)};main;outer;inner 1`,
  ].sort());
});

test('symbolization throughput (printed, not asserted)', async () => {
  // 300k samples of 10 frames: 20 processes running the PIE program and libc,
  // 20k distinct sampled PCs in libc under 3000 distinct call paths.
  const libc = libcPath();
  const libcBase = 0x7f00_0000_0000n;
  const libcSyms = [...nmSymbols(libc, ['-D']).values()].filter((s) => s.size > 16);
  const funcs = ['inner', 'outer', 'other', 'main'];
  const records: LogRecord[] = [rec.allocDyn(1, 'cpu-clock')];
  const NPROC = 20;
  const baseOf = (p: number): bigint => PIE_BASE + BigInt(p) * 0x100000n;
  for (let p = 0; p < NPROC; p++) records.push(rec.exec(1000 + p, pie.path), rec.mapIn(1000 + p, baseOf(p), pie.path), rec.mapIn(1000 + p, libcBase, libc));
  let seed = 12345;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
  const libcPc = (): bigint => {
    const s = libcSyms[rand(libcSyms.length)];
    return libcBase + BigInt(s.addr + 1 + rand(s.size - 1));
  };
  const sites = Array.from({ length: 500 }, () => (rand(2) ? { lib: libcPc() } : { f: funcs[rand(4)], at: 1 + rand(20) }));
  const paths = Array.from({ length: 3000 }, () => Array.from({ length: 9 }, () => sites[rand(sites.length)]));
  const leaves = Array.from({ length: 20000 }, libcPc);
  const N = 300_000;
  for (let i = 0; i < N; i++) {
    const p = rand(NPROC);
    const pcs = [leaves[rand(leaves.length)]];
    for (const s of paths[rand(paths.length)]) pcs.push('lib' in s ? s.lib! : pcIn(pie, baseOf(p), s.f!, s.at!));
    records.push(rec.callchain(1000 + p, 1, pcs));
  }
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const result = await analyzeLog(records);
  const cpu = process.cpuUsage(c0);
  const ms = performance.now() - t0;
  assert.equal(result.stats.samples, N);
  assert.equal(result.stats.unresolved, 0);
  console.log(
    `# analyzed ${N} samples x 10 frames (symbolize + aggregate, cold caches): ${ms.toFixed(0)} ms wall, ` +
      `${((cpu.user + cpu.system) / 1000).toFixed(0)} ms CPU, ${((N * 10) / ms / 1000).toFixed(1)} M frames/s`,
  );
});
