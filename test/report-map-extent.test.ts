// MAP_IN with its extent (file offset and length): an address is the image's
// only inside a mapping that covers it. The case it fixes: V8 maps a piece of
// node's text a second time amid its JIT code; the code next to that piece is
// not node's. Crafted mappings of the report fixture program, whose symbol
// addresses come from nm and its segments from readelf.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { analyzeLog } from '../src/report/analyze.js';
import { Symbolizer } from '../src/report/symbolizer.js';
import { formatFolded } from '../src/report/write-folded.js';
import type { LogRecord, MapInRecord } from '../src/log/records.js';
import { buildProgram, rec, sym, tempDir, text, type Program } from './report-fixture.js';

const dir = tempDir('report-map-extent-');
after(() => rmSync(dir, { recursive: true, force: true }));
const prog = buildProgram(dir, 'prog', ['-pie', '-fPIE']);
const BASE = 0x5555_5555_4000n;
// Where the crafted "remap" puts a piece of the text: far from BASE, as V8's code range is.
const REMAP = 0x7f00_2000_0000n;

/** The executable PT_LOAD's file offset and size, from readelf. */
function textSegment(p: Program): { offset: bigint; filesz: bigint } {
  const out = execFileSync('readelf', ['-lW', p.path], { encoding: 'utf8' });
  const load = out.split('\n').find((l) => /^\s*LOAD\s.*\s[R ][W ]E\s+0x[0-9a-f]+$/.test(l))!.trim().split(/\s+/);
  return { offset: BigInt(load[1]), filesz: BigInt(load[4]) };
}

/** The file offset of a function of the program. */
const fileOffset = (name: string): bigint => BigInt(sym(prog, name).addr - prog.linkBase);

/** MAP_IN of file bytes [offset, offset + length) mapped at `at`. */
function mapAt(pid: number, at: bigint, offset: bigint, length: bigint, path = prog.path): MapInRecord {
  return { ...rec.mapIn(pid, at - offset, path), extent: { offset, length } };
}

function symbolizerWith(records: LogRecord[], perfMapDir = dir): Symbolizer {
  const s = new Symbolizer({ perfMapDir });
  for (const r of records) s.processes.apply(r);
  return s;
}

const text0 = textSegment(prog);
// The program's text mapped where the loader puts it (page-aligned, as mmap maps it).
const textPage = text0.offset & ~0xfffn;
const mainText = (pid: number): MapInRecord => mapAt(pid, BASE + textPage, textPage, ((text0.offset + text0.filesz + 0xfffn) & ~0xfffn) - textPage);
// The remapped piece: exactly the bytes of `inner`, so that `outer` and `other` are next to it.
const innerAt = fileOffset('inner');
const innerSize = BigInt(sym(prog, 'inner').size);
const remap = (pid: number): MapInRecord => mapAt(pid, REMAP, innerAt, innerSize);
// An address in the remap's neighbourhood where the image's text would put `outer`.
const outerNextToRemap = REMAP + (fileOffset('outer') - innerAt) + 2n;

test('a piece of the text mapped again resolves there, and only there', () => {
  const s = symbolizerWith([mainText(20), remap(20)]);
  // In the remap: the function of the file bytes it maps.
  assert.deepEqual(s.symbolize(20, REMAP + 7n), { image: prog.path, symbol: 'inner', offset: 7, name: 'inner' });
  // Next to it: no image (code generated there is not the program's), printed as its address.
  const next = s.symbolize(20, outerNextToRemap);
  assert.deepEqual(next, { image: null, symbol: null, offset: 0, name: `0x${outerNextToRemap.toString(16)}` });
  assert.equal(s.symbolize(20, REMAP + innerSize).image, null, 'the first byte past the mapping');
  assert.equal(s.symbolize(20, REMAP - 1n).image, null, 'the byte before it');
  // The text where the loader mapped it is untouched.
  assert.equal(s.symbolize(20, BASE + fileOffset('outer') + 2n).symbol, 'outer');
  assert.equal(s.symbolize(20, BASE + fileOffset('inner') + 2n).symbol, 'inner');
});

test('a log without extents (hwpmc, older tspmc) resolves as before: the whole text where MAP_IN puts file offset 0', () => {
  const old = (r: MapInRecord): MapInRecord => ({ type: r.type, ts: r.ts, pid: r.pid, start: r.start, pathname: r.pathname });
  const s = symbolizerWith([old(mainText(21)), old(remap(21))]);
  assert.equal(s.symbolize(21, REMAP + 7n).symbol, 'inner');
  // What the extent fixes: without it the remap stands for the whole text, and its neighbour is named.
  assert.equal(s.symbolize(21, outerNextToRemap).symbol, 'outer');
  assert.equal(s.symbolize(21, BASE + fileOffset('outer') + 2n).symbol, 'outer');
});

test("addresses next to a remap are resolved by the process's perf-PID.map", () => {
  const pid = 4343;
  const mapDir = join(dir, 'jit');
  mkdirSync(mapDir);
  writeFileSync(join(mapDir, `perf-${pid}.map`), `${(outerNextToRemap - 2n).toString(16)} 40 LazyCompile:*hotLoop x.js:1\n`);
  const s = symbolizerWith([mainText(pid), remap(pid)], mapDir);
  assert.equal(s.symbolize(pid, outerNextToRemap).symbol, 'LazyCompile:*hotLoop x.js:1');
  assert.equal(s.symbolize(pid, REMAP + 7n).symbol, 'inner');
});

test('a mapping of a file that cannot be read covers its extent: image+offset inside, an address outside', () => {
  const s = symbolizerWith([mapAt(22, 0x7f55_0000_1000n, 0x3000n, 0x2000n, '/no/such/lib.so')]);
  // The offset printed is the file offset: the mapping starts at file offset 0x3000.
  assert.equal(s.symbolize(22, 0x7f55_0000_1040n).name, 'lib.so+0x3040');
  assert.equal(s.symbolize(22, 0x7f55_0000_2fffn).name, 'lib.so+0x4fff');
  assert.equal(s.symbolize(22, 0x7f55_0000_3000n).image, null);
  assert.equal(s.symbolize(22, 0x7f55_0000_0fffn).image, null);
});

test('a file offset above the mapping address (MAP_IN start below 0) still maps', () => {
  // A remap low in the address space of file bytes further in than its address: start = address - offset wraps.
  const at = 0x1000n;
  const offset = innerAt + 0x10000n;
  const r: MapInRecord = { ...rec.mapIn(23, BigInt.asUintN(64, at - offset), '/no/such/big.so'), extent: { offset, length: 0x1000n } };
  const s = symbolizerWith([r]);
  assert.equal(s.symbolize(23, 0x1010n).name, `big.so+0x${(offset + 0x10n).toString(16)}`);
});

test('the outputs see the fixed resolution: folded stacks of samples in and next to a remap', async () => {
  const P = 24;
  const inRemap = REMAP + 3n;
  const records: LogRecord[] = [
    rec.allocDyn(1, 'cpu-clock'),
    rec.exec(P, prog.path),
    mainText(P),
    remap(P),
    // Generated code next to the remap, called from main.
    rec.callchain(P, 1, [outerNextToRemap, BASE + fileOffset('main') + 8n]),
    rec.callchain(P, 1, [inRemap, BASE + fileOffset('main') + 8n]),
    rec.callchain(P, 1, [BASE + fileOffset('other') + 2n]),
  ];
  const folded = text(formatFolded(await analyzeLog(records, { perfMapDir: dir }))).trim().split('\n').sort();
  const name = basename(prog.path);
  assert.deepEqual(folded, [`${name};main;0x${outerNextToRemap.toString(16)} 1`, `${name};main;inner 1`, `${name};other 1`]);
});
