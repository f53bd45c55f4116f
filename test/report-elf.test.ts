import { test } from 'node:test';
import assert from 'node:assert/strict';
import { utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readElfFile, parseElfBuffer } from '../src/report/elf.js';
import { readOwnVdso } from '../src/report/vdso.js';
import { isPmcError } from '../src/pmc-error.js';
import { buildProgram, hasTool, libcPath, nmSymbols, sym, tempDir, textLoadBase } from './report-fixture.js';
import { buildC, ok, pmcstat } from './cli-fixture.js';

const dir = tempDir('report-elf-');
const nopie = buildProgram(dir, 'prog-nopie', ['-no-pie']);
const pie = buildProgram(dir, 'prog-pie', ['-pie', '-fPIE']);

const nameAt = (path: string, addr: number): string | undefined => {
  const t = readElfFile(path).symbols().table;
  const i = t.find(addr);
  return i < 0 ? undefined : t.name(i);
};

test('e_type, PT_LOAD segments and text extent of -no-pie and -pie builds', () => {
  const a = readElfFile(nopie.path);
  const b = readElfFile(pie.path);
  assert.equal(a.type, 'EXEC');
  assert.equal(b.type, 'DYN');
  assert.equal(a.linkBase, nopie.linkBase);
  assert.equal(b.linkBase, pie.linkBase);
  for (const [img, prog] of [[a, nopie], [b, pie]] as const) {
    assert.ok(img.symbols().hasSymtab);
    assert.ok(img.loads.length >= 2);
    const main = sym(prog, 'main');
    assert.ok(img.textStart <= main.addr && main.addr + main.size <= img.textEnd, 'main lies in the executable segment');
  }
});

const noLld = !hasTool('ld.lld') && 'ld.lld is not installed (apt-get install lld; .ci/run does)';

test('an lld build, whose text is a page further in memory than in the file: link base from the executable segment; samples resolve', { skip: noLld }, () => {
  const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold-lld', ['-pie', '-fPIE', '-fuse-ld=lld']);
  const img = readElfFile(prog);
  const first = img.loads[0];
  // The layout this test is about (lld's default since LLVM 10); a linker that lays out like GNU ld proves nothing here.
  assert.notEqual(first.vaddr - first.offset, textLoadBase(prog), 'the executable segment has its own vaddr - offset');
  assert.equal(img.linkBase, textLoadBase(prog));
  // End to end: the samples of the loops resolve to hot and cold.
  const env = { TSPMC_ADMIN_STATE: join(dir, 'admin.json'), TSPMC_CACHE_DIR: '' };
  const log = join(dir, 'lld.pmclog');
  ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, '2', '150000000', '50000000'], { env }), 'pmcstat -P');
  const graph = ok(pmcstat(['-R', log, '-G', '-'], { env }), 'pmcstat -R -G').stdout;
  const entries = graph.split('\n').filter((l) => /^\d/.test(l));
  assert.match(entries[0] ?? '', new RegExp(` hot @ ${prog}$`), graph);
  assert.match(entries[1] ?? '', new RegExp(` cold @ ${prog}$`), graph);
});

test('FUNC symbols from .symtab with their sizes, found at every byte', () => {
  for (const prog of [nopie, pie]) {
    for (const name of ['inner', 'outer', 'other', 'main']) {
      const s = sym(prog, name);
      const t = readElfFile(prog.path).symbols().table;
      const i = t.find(s.addr);
      assert.equal(t.name(i), name);
      assert.equal(t.ends[i] - t.starts[i], s.size, `${name} size`);
      assert.equal(nameAt(prog.path, s.addr + s.size - 1), name);
    }
    const inner = sym(prog, 'inner');
    assert.notEqual(nameAt(prog.path, inner.addr + inner.size), 'inner', 'the byte after inner is not inner');
  }
});

test('a zero-size symbol runs to the next symbol', () => {
  const ns = sym(pie, 'nosize');
  assert.equal(ns.size, 0, 'nm reports no size for nosize');
  const t = readElfFile(pie.path).symbols().table;
  const i = t.find(ns.addr);
  assert.equal(t.name(i), 'nosize');
  const next = [...pie.syms.values()].map((s) => s.addr).filter((a) => a > ns.addr).sort((x, y) => x - y)[0];
  assert.equal(t.ends[i], next);
  assert.equal(nameAt(pie.path, next - 1), 'nosize');
});

test('stripped -rdynamic build: functions come from .dynsym', () => {
  const stripped = join(dir, 'prog-stripped');
  const prog = buildProgram(dir, 'prog-stripped', ['-pie', '-fPIE', '-rdynamic', '-s']);
  assert.equal(prog.path, stripped);
  const dyn = nmSymbols(stripped, ['-D']);
  const img = readElfFile(stripped);
  assert.equal(img.symbols().hasSymtab, false);
  for (const name of ['inner', 'outer', 'main']) assert.equal(nameAt(stripped, dyn.get(name)!.addr + 1), name);
});

test('libc (stripped, .dynsym only) resolves getpid and its alias', () => {
  const libc = libcPath();
  const dyn = nmSymbols(libc, ['-D']);
  const getpid = dyn.get('getpid')!;
  const aliases = [...dyn].filter(([, s]) => s.addr === getpid.addr).map(([n]) => n);
  const name = nameAt(libc, getpid.addr)!;
  assert.ok(aliases.includes(name), `${name} is one of ${aliases.join(',')}`);
  assert.equal(name, 'getpid', 'the plain name is preferred over __getpid');
  assert.equal(readElfFile(libc).type, 'DYN');
});

test('the vdso, read from this process, is an ELF with clock_gettime', () => {
  const img = parseElfBuffer(readOwnVdso(), '[vdso]');
  assert.equal(img.type, 'DYN');
  const table = img.symbols().table;
  const names = new Set(Array.from({ length: table.length }, (_, i) => table.name(i)));
  assert.ok(names.has('clock_gettime') || names.has('__vdso_clock_gettime'), [...names].join(','));
});

test('cache by path and mtime; clear errors for missing and non-ELF files', () => {
  const a = readElfFile(pie.path);
  assert.equal(readElfFile(pie.path), a, 'second read comes from the cache');
  const later = new Date(Date.now() + 5000);
  utimesSync(pie.path, later, later);
  assert.notEqual(readElfFile(pie.path), a, 'a new mtime re-reads the file');

  assert.throws(() => readElfFile(join(dir, 'nope')), (e) => isPmcError(e, 'ENOENT') && /nope/.test(e.message));
  const junk = join(dir, 'junk');
  writeFileSync(junk, 'not an elf file at all, but long enough to have a header of 64 bytes......');
  assert.throws(() => readElfFile(junk), (e) => isPmcError(e, 'ENOEXEC') && /junk: not an ELF file/.test(e.message));
});
