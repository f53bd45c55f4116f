import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { analyzeLog } from '../src/report/analyze.js';
import { writeOutputs } from '../src/report/outputs.js';
import { formatAnnotate } from '../src/report/write-annotate.js';
import { formatCallgraph } from '../src/report/write-callgraph.js';
import { formatCalltree } from '../src/report/write-calltree.js';
import { formatFolded } from '../src/report/write-folded.js';
import { buildGmonFiles, GMONVERSION } from '../src/report/write-gprof.js';
import { formatPcs } from '../src/report/write-pcs.js';
import { formatStats } from '../src/report/write-stats.js';
import type { LogRecord } from '../src/log/records.js';
import { fixed2 } from '../src/report/format.js';
import { isPmcError } from '../src/pmc-error.js';
import { buildProgram, hasTool, pcIn, rec, retIn, sym, tempDir, text } from './report-fixture.js';

const dir = tempDir('report-out-');
const prog = buildProgram(dir, 'prog', ['-pie', '-fPIE']);
const BASE = 0x5555_5555_4000n;
const PID = 500;
const name = basename(prog.path);

// Input: cpu-clock samples main>outer>inner (A), main>other>inner (B), main>outer (C); one page-faults sample.
const A = 6;
const B = 2;
const C = 2;
function records(): LogRecord[] {
  const r: LogRecord[] = [rec.allocDyn(0x100, 'cpu-clock'), rec.allocDyn(0x200, 'page-faults'), rec.exec(PID, prog.path), rec.mapIn(PID, BASE, prog.path)];
  for (let i = 0; i < A; i++) r.push(rec.callchain(PID, 0x100, [pcIn(prog, BASE, 'inner', 7 + i), retIn(prog, BASE, 'outer'), retIn(prog, BASE, 'main')]));
  for (let i = 0; i < B; i++) r.push(rec.callchain(PID, 0x100, [pcIn(prog, BASE, 'inner', 9), retIn(prog, BASE, 'other'), retIn(prog, BASE, 'main')]));
  for (let i = 0; i < C; i++) r.push(rec.callchain(PID, 0x100, [pcIn(prog, BASE, 'outer', 3), retIn(prog, BASE, 'main')]));
  r.push(rec.callchain(PID, 0x200, [pcIn(prog, BASE, 'inner', 7), retIn(prog, BASE, 'outer'), retIn(prog, BASE, 'main')]));
  r.push(rec.drop(3, 4), rec.drop(1, 0));
  return r;
}

// An async source, as the log reader yields records.
async function* fromAsync(r: LogRecord[]): AsyncGenerator<LogRecord> {
  yield* r;
}

test('-G: pmcstat call graph shape, callers below the sampled function', async () => {
  const result = await analyzeLog(fromAsync(records()));
  const total = A + B + C;
  const pct = (n: number, of: number): string => (n === of ? '100.0%' : `${fixed2((100 * n) / of).padStart(5, '0')}%`);
  assert.equal(
    text(formatCallgraph(result)),
    [
      `@ cpu-clock [${total} samples]`,
      '',
      `${pct(A + B, total)}  [${A + B}]        inner @ ${prog.path}`,
      ` ${pct(A, A + B)}  [${A}]         outer`,
      `  ${pct(A, A)}  [${A}]          main`,
      ` ${pct(B, A + B)}  [${B}]         other`,
      `  ${pct(B, B)}  [${B}]          main`,
      '',
      `${pct(C, total)}  [${C}]        outer @ ${prog.path}`,
      ` ${pct(C, C)}  [${C}]         main`,
      '',
      '@ page-faults [1 samples]',
      '',
      `100.0%  [1]        inner @ ${prog.path}`,
      ` 100.0%  [1]         outer`,
      `  100.0%  [1]          main`,
      '',
      '',
    ].join('\n'),
  );
  // -z 2: the sampled function and one caller.
  const shallow = text(formatCallgraph(result, { depth: 2 }));
  assert.ok(shallow.includes(' outer\n') && !/^ {2}\S/m.test(shallow), shallow);
});

test('percentages round like printf %05.2f (ties to even), not like toFixed', () => {
  assert.equal(fixed2((100 * 1) / 32), '3.12'); // 3.125
  assert.equal(fixed2((100 * 3) / 8), '37.50');
  assert.equal(fixed2(0.375), '0.38');
  assert.equal(fixed2(2 / 3), '0.67');
});

test('-G reproduces the columns of a published pmcstat graph (Gregg: 854 of 10867, 418, 417)', async () => {
  const r: LogRecord[] = [rec.allocDyn(1, 'CPU_CLK_UNHALTED.THREAD_P'), rec.mapIn(PID, BASE, prog.path)];
  const chain = (...frames: string[]): bigint[] => frames.map((f, i) => (i === 0 ? pcIn(prog, BASE, f, 2) : retIn(prog, BASE, f)));
  for (let i = 0; i < 417; i++) r.push(rec.callchain(PID, 1, chain('inner', 'outer', 'main')));
  r.push(rec.callchain(PID, 1, chain('inner', 'outer')));
  for (let i = 0; i < 854 - 418; i++) r.push(rec.callchain(PID, 1, chain('inner', 'other')));
  for (let i = 0; i < 10867 - 854; i++) r.push(rec.callchain(PID, 1, chain('main')));
  const lines = text(formatCallgraph(await analyzeLog(r))).split('\n');
  assert.equal(lines[0], '@ CPU_CLK_UNHALTED.THREAD_P [10867 samples]');
  // The published lines, with this program's names:
  //   07.86%  [854]      __mtx_lock_sleep @ /boot/kernel/kernel
  //    48.95%  [418]       vm_page_alloc
  //     99.76%  [417]        vm_page_grab
  assert.ok(lines.includes(`07.86%  [854]      inner @ ${prog.path}`), lines.join('\n'));
  assert.ok(lines.includes(' 48.95%  [418]       outer'));
  assert.ok(lines.includes('  99.76%  [417]        main'));
});

test('--folded: root first, process name first, kernel frames _[k], unknown frames', async () => {
  const kallsyms = join(dir, 'kallsyms');
  writeFileSync(kallsyms, 'ffffffff81000000 T _stext\nffffffff81000200 T do_syscall_64\nffffffff81000400 T entry_SYSCALL_64\n');
  const r = records();
  // Kernel frames, then the interrupted user PC: the first byte of `other`, looked up as itself (not pc - 1).
  r.push(rec.callchain(PID, 0x100, [0xffffffff81000210n, 0xffffffff81000420n, pcIn(prog, BASE, 'other', 0), retIn(prog, BASE, 'main')], false));
  r.push(rec.callchain(PID, 0x100, [0x7000_0000_1000n, retIn(prog, BASE, 'main')]));
  const result = await analyzeLog(r, { kallsyms, perfMapDir: dir });
  assert.deepEqual(text(formatFolded(result)).split('\n'), [
    `${name};main;0x700000001000 1`,
    `${name};main;other;entry_SYSCALL_64_[k];do_syscall_64_[k] 1`,
    `${name};main;other;inner ${B}`,
    `${name};main;outer ${C}`,
    `${name};main;outer;inner ${A}`,
    '',
  ]);
  assert.equal(text(formatFolded(result, { pmc: 'page-faults', annotate: false })), `${name};main;outer;inner 1\n`);
  assert.throws(() => text(formatFolded(result, { pmc: 'nope' })), (e) => isPmcError(e, 'EINVAL') && /cpu-clock, page-faults/.test(e.message));
  assert.match(text(formatCallgraph(result)), /^\d\d\.\d\d%  \[1\] +0x700000001000 @ \[unknown\]$/m);
  assert.equal(result.stats.unknownObject, 1);
});

test('-F: KCachegrind calltree with fn/cfn/calls and one cost column per PMC', async () => {
  const result = await analyzeLog(records());
  const out = text(formatCalltree(result));
  const hex = (f: string): string => '0x' + sym(prog, f).addr.toString(16);
  assert.ok(out.startsWith('version: 1\ncreator: pmcstat\npositions: instr line\nevents: cpu_clock_0 page_faults_1\nsummary: 10 1\n'), out);
  const block = (fn: string): string => out.split('\n\n').find((b) => b.includes(`\nfn=${fn}\n`))! + '\n';
  assert.match(block('inner'), new RegExp(`^${hex('inner')} 0 ${A + B} 1$`, 'm'));
  assert.match(block('outer'), new RegExp(`^${hex('outer')} 0 ${C} 0$`, 'm'));
  assert.ok(block('outer').includes(`cfn=inner\ncalls=${A + 1} ${hex('inner')} 0\n${hex('outer')} 0 ${A} 1\n`), block('outer'));
  assert.ok(block('main').includes(`cfn=other\ncalls=${B} ${hex('other')} 0\n${hex('main')} 0 ${B} 0\n`), block('main'));
  assert.ok(block('ROOT').includes(`cfn=main\ncalls=${A + B + C + 1} ${hex('main')} 0\n0 0 ${A + B + C} 1\n`), block('ROOT'));
});

test('-F output is read by callgrind_annotate', { skip: !hasTool('callgrind_annotate') && 'valgrind not installed' }, async () => {
  const file = join(dir, 'calltree.out');
  await writeOutputs(await analyzeLog(records()), { calltree: file });
  const out = execFileSync('callgrind_annotate', ['--inclusive=yes', file], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const row = (fn: string): string => out.split('\n').find((l) => l.includes(`:${fn} [${prog.path}]`)) ?? '';
  // Inclusive cpu-clock: main all, outer A + C, inner A + B.
  assert.match(row('main'), new RegExp(`^\\s*${A + B + C} `), out);
  assert.match(row('outer'), new RegExp(`^\\s*${A + C} `), out);
  assert.match(row('inner'), new RegExp(`^\\s*${A + B} `), out);
});

test('-m: sampled PCs with the function and its runtime extent; -a: every frame, then --', async () => {
  const result = await analyzeLog(records(), { keepSamples: true });
  const lines = text(formatPcs(result)).trim().split('\n');
  assert.equal(lines.length, A + B + C + 1);
  for (const l of lines) {
    const [pc, fn, start, end] = l.split(' ');
    const s = sym(prog, fn);
    assert.equal(BigInt(start), BASE + BigInt(s.addr));
    assert.equal(BigInt(end), BASE + BigInt(s.addr + s.size));
    assert.ok(BigInt(start) <= BigInt(pc) && BigInt(pc) < BigInt(end));
  }
  const first = text(formatAnnotate(result)).split('--\n')[0].trim().split('\n');
  assert.deepEqual(first, [
    `0x${pcIn(prog, BASE, 'inner', 7).toString(16)} inner ${prog.path}`,
    `0x${retIn(prog, BASE, 'outer').toString(16)} outer ${prog.path}`,
    `0x${retIn(prog, BASE, 'main').toString(16)} main ${prog.path}`,
  ]);
  const plain = await analyzeLog(records());
  assert.throws(() => text(formatPcs(plain)), (e) => isPmcError(e, 'EINVAL') && /needs.samples/.test(e.message));
});

test('-g: gmon files per PMC and image, histogram and arcs; read by gprof', async () => {
  const result = await analyzeLog(records());
  const files = buildGmonFiles(result);
  assert.deepEqual(files.map((f) => f.path).sort(), [`cpu-clock/${name}.gmon`, `page-faults/${name}.gmon`]);
  const f = files.find((x) => x.pmc === 'cpu-clock')!;
  const d = f.data;
  const lowpc = Number(d.readBigUInt64LE(0));
  const highpc = Number(d.readBigUInt64LE(8));
  const ncnt = d.readUInt32LE(16);
  assert.equal(d.readUInt32LE(20), GMONVERSION);
  assert.ok(lowpc <= sym(prog, 'inner').addr && sym(prog, 'main').addr < highpc);
  assert.equal(ncnt, 40 + ((highpc - lowpc) / 16) * 2);
  let histogram = 0;
  for (let o = 40; o < ncnt; o += 2) histogram += d.readUInt16LE(o);
  assert.equal(histogram, A + B + C);
  const arcs = new Map<string, number>();
  for (let o = ncnt; o < d.length; o += 24) arcs.set(`${d.readBigUInt64LE(o)}>${d.readBigUInt64LE(o + 8)}`, Number(d.readBigUInt64LE(o + 16)));
  const arc = (from: string, to: string): number | undefined => arcs.get(`${sym(prog, from).addr}>${sym(prog, to).addr}`);
  assert.equal(arc('outer', 'inner'), A);
  assert.equal(arc('other', 'inner'), B);
  assert.equal(arc('main', 'outer'), A + C);
  assert.equal(arc('main', 'other'), B);

  const stdout = new PassThrough();
  let map = '';
  stdout.on('data', (c) => (map += c));
  const report = await writeOutputs(result, { gprof: dir, gmonMap: '-', stdout });
  assert.deepEqual(report.written.sort(), [join(dir, 'cpu-clock', `${name}.gmon`), join(dir, 'page-faults', `${name}.gmon`)]);
  assert.equal(map, ` "${prog.path}" => "${name}.gmon" cpu-clock/${A + B + C} page-faults/1\n`);
  if (!hasTool('gprof')) return;
  const out = execFileSync('gprof', ['-b', prog.path, join(dir, 'cpu-clock', `${name}.gmon`)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  // Call graph: inner is called from outer (A) and other (B).
  assert.match(out, new RegExp(`${A}/${A + B}\\s+outer`), out);
  assert.match(out, new RegExp(`${B}/${A + B}\\s+other`), out);
  const flat = out.split('\n').filter((l) => /^\s*\d+\.\d+/.test(l));
  assert.match(flat[0], /inner$/, 'inner has the most self time');
});

test('--stats: record counts, samples, dropped and lost sums; JSON form; writeOutputs to files', async () => {
  const result = await analyzeLog(records());
  const s = result.stats;
  assert.equal(s.samples, A + B + C + 1);
  assert.equal(s.dropped, 4);
  assert.equal(s.lost, 4);
  assert.deepEqual(s.records, { DROPNOTIFY: 2, PROCEXEC: 1, MAP_IN: 1, CALLCHAIN: A + B + C + 1, PMCALLOCATEDYN: 2 });
  assert.deepEqual(s.pmcs, [
    { name: 'cpu-clock', pmcids: [0x100], samples: A + B + C },
    { name: 'page-faults', pmcids: [0x200], samples: 1 },
  ]);
  assert.match(text(formatStats(result)), /#samples\/dropped +4\n/);
  const json = join(dir, 'stats.json');
  const graph = join(dir, 'graph.txt');
  await writeOutputs(result, { stats: json, json: true, callgraph: graph });
  const parsed = JSON.parse(readFileSync(json, 'utf8'));
  assert.deepEqual(Object.keys(parsed).slice(0, 4), ['samples', 'dropped', 'lost', 'records']);
  assert.equal(parsed.samples, A + B + C + 1);
  assert.equal(readFileSync(graph, 'utf8'), text(formatCallgraph(result)));
});
