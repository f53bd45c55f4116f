// Readable names and the table of outputs: a C++ workload sampled by
// pmcstat shows demangled names in every output that prints names (the
// expected names come from `nm -C`, not from the code under test); Rust
// names lose their hashes; every output of the table is an option, a usage
// line and a writer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { parsePmcstatArgs, PMCSTAT_USAGE } from '../src/cli/pmcstat-args.js';
import { demangle } from '../src/report/demangle.js';
import { OUTPUTS } from '../src/report/outputs.js';
import { fixture, ok, pmcstat, tempDir } from './cli-fixture.js';
import { hasTool } from './report-fixture.js';

// The analysis caches parsed kallsyms: not in the user's cache directory.
process.env.TSPMC_CACHE_DIR = '';

const noCxx = !hasTool('g++') && 'g++ is not installed';
const noFilt = !hasTool('c++filt') && 'c++filt (binutils) is not installed';

test('a C++ workload\'s frames are demangled in -G, --folded, -a, the flame graph and pprof', { skip: noCxx || noFilt }, () => {
  const dir = tempDir('visual-cxx-');
  const prog = join(dir, 'visual-cxx');
  execFileSync('g++', ['-O0', '-fno-omit-frame-pointer', '-o', prog, fixture('visual-cxx.cpp')]);
  // The readable names, as nm -C gives them, and their mangled forms.
  const readable = execFileSync('nm', ['-C', '--defined-only', prog], { encoding: 'utf8' });
  const mangled = execFileSync('nm', ['--defined-only', prog], { encoding: 'utf8' });
  const add = /\s(shapes::Accumulator<unsigned long>::add\(unsigned long\))$/m.exec(readable)?.[1];
  const spin = /\s(shapes::spin\(unsigned long\))$/m.exec(readable)?.[1];
  assert.ok(add && spin, readable);
  const addMangled = /\s(_ZN6shapes11AccumulatorImE3addEm)$/m.exec(mangled)?.[1];
  assert.ok(addMangled, 'the hot function has a mangled name');

  const log = join(dir, 'cxx.pmclog');
  const files = { graph: join(dir, 'graph.txt'), folded: join(dir, 'folded.txt'), annotate: join(dir, 'chains.txt'), html: join(dir, 'cxx.html'), pprof: join(dir, 'cxx.pb.gz') };
  ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, '1000000000'], { cwd: dir }), 'pmcstat -P cpu-clock');
  ok(pmcstat(['-R', log, '-G', files.graph, '--folded', files.folded, '-a', files.annotate, '--flamegraph', files.html, '--pprof', files.pprof]), 'pmcstat -R');

  const graph = readFileSync(files.graph, 'utf8');
  assert.match(graph, new RegExp(`^\\S+%\\s+\\[\\d+\\]\\s+${escape(add)} @ ${escape(prog)}$`, 'm'), graph);
  assert.match(graph, new RegExp(`^ \\S+%\\s+\\[\\d+\\]\\s+${escape(spin)}$`, 'm'));
  const folded = readFileSync(files.folded, 'utf8');
  assert.ok(folded.split('\n').some((l) => l.includes(`;main;${spin};${add} `)), folded);
  assert.ok(readFileSync(files.annotate, 'utf8').includes(` ${add} ${prog}`));
  assert.ok(readFileSync(files.html, 'utf8').includes(JSON.stringify(add).slice(1, -1).replace(/</g, '\\u003c')));
  const profile = Profile.decode(gunzipSync(readFileSync(files.pprof)));
  // pprof's name is the readable one, its system name the mangled one (so pprof leaves the name as it is).
  const fn = profile.function.find((f) => profile.stringTable.strings[Number(f.name)] === add);
  assert.equal(profile.stringTable.strings[Number(fn?.systemName)], addMangled);
  for (const text of [graph, folded, readFileSync(files.annotate, 'utf8')]) assert.ok(!text.includes(addMangled), 'no mangled name left');
});

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

test('Rust names: legacy hashes and v0 disambiguators left out; other names untouched', { skip: noFilt }, () => {
  const r = demangle(['_ZN4core3fmt5write17h0123456789abcdefE', '_RNvCs1234_7mycrate3foo', 'main', '_ZN3foo3barEv.cold', 'LazyCompile:*fib /x.js:1']);
  assert.equal(r.problem, undefined);
  assert.deepEqual(r.names, ['core::fmt::write', 'mycrate::foo', 'main', 'foo::bar() [clone .cold]', 'LazyCompile:*fib /x.js:1']);
});

test('without c++filt the names stay as they are, and the analysis says why', () => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const r = demangle(['_ZN3foo3barEv']);
    assert.deepEqual(r.names, ['_ZN3foo3barEv']);
    assert.match(r.problem ?? '', /c\+\+filt: ENOENT/);
  } finally {
    process.env.PATH = path;
  }
});

test('every output of the table is an option, a usage line and a target', () => {
  for (const o of OUTPUTS) {
    const line = PMCSTAT_USAGE.split('\n').find((l) => l.trimStart().startsWith(`${o.option} `));
    assert.ok(line?.includes(o.description), `usage line for ${o.option}`);
    const args = parsePmcstatArgs(['-R', 'x.log', o.option, ...(o.value ? ['target'] : [])]);
    const expected = o.name === 'gprof' ? '.' : o.value ? 'target' : '-';
    assert.deepEqual(args.outputs, { [o.name]: expected }, o.option);
  }
  assert.deepEqual(parsePmcstatArgs(['-R', 'x.log', '-g', '-D', 'out']).outputs, { gprof: 'out' });
});
