// Rust names, end to end: a real Rust program (test/fixtures/visual-rust.rs)
// built with each symbol mangling rustc has (legacy, its default, and v0),
// sampled by pmcstat; its hot method must read as it does in the source in
// -G, top mode, the flame graph, speedscope, pprof (and `go tool pprof`),
// KCachegrind's file and -m,
// and -a must give the hot loop's source line. The expected names are the
// source's paths; nm shows the mangled forms really are in the binary.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { fixture, ok, pmcstat, tempDir } from './cli-fixture.js';
import { hasTool } from './report-fixture.js';

// The analysis caches parsed kallsyms: not in the user's cache directory.
process.env.TSPMC_CACHE_DIR = '';

const noRustc = !hasTool('rustc') && 'rustc is not installed (apt-get install rustc; .ci/run does)';
const noFilt = !hasTool('c++filt') && 'c++filt (binutils) is not installed';
const noGo = !hasTool('go') && 'go is not installed (apt-get install golang-go; .ci/run does)';

const dir = tempDir('visual-rust-');
after(() => rmSync(dir, { recursive: true, force: true }));

const SOURCE = fixture('visual-rust.rs');
const sourceLines = readFileSync(SOURCE, 'utf8').split('\n');
/** The hot loop's lines (1-based): the `while` and its body. */
const loopLines = ['while i < n', 'self.sum = self.sum.wrapping_add(i)', 'i += 1'].map((text) => sourceLines.findIndex((l) => l.includes(text)) + 1);

const MANGLINGS = [
  {
    name: 'legacy',
    flags: [] as string[],
    mangled: /^_ZN11visual_rust6shapes\S*Accumulator\S*3add17h[0-9a-f]{16}E$/m,
    add: 'visual_rust::shapes::Accumulator<u64>::add',
  },
  {
    name: 'v0',
    flags: ['-C', 'symbol-mangling-version=v0'],
    mangled: /^_R\S*11visual_rust6shapes\S*11Accumulator\S*3add$/m,
    add: '<visual_rust::shapes::Accumulator<u64>>::add',
  },
];
const SPIN = 'visual_rust::shapes::spin';
const MAIN = 'visual_rust::main';
/** A name c++filt would have changed. */
const MANGLED = /^(?:_ZN|_R[A-Z])/;

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

/** The element `id`'s JSON in the flame graph page. */
function pageJson(html: string, id: string): unknown {
  const m = new RegExp(`<script id="${id}" type="application/json">([^]*?)</script>`).exec(html);
  assert.ok(m, `the page has #${id}`);
  return JSON.parse(m[1]);
}

/** Samples per function where they were taken (self), from a map of leaf name -> samples. */
const hottest = (self: Map<string, number>): string => [...self].sort((a, b) => b[1] - a[1])[0][0];
const add = (m: Map<string, number>, k: string, n: number): void => void m.set(k, (m.get(k) ?? 0) + n);

for (const mangling of MANGLINGS) {
  test(`Rust (${mangling.name} mangling): the hot method is demangled in -G, -T, the flame graph, speedscope, pprof and go tool pprof; -a gives its loop's line`, { skip: noRustc || noFilt }, (t) => {
    const prog = join(dir, `visual-rust-${mangling.name}`);
    const build = spawnSync('rustc', ['--crate-name', 'visual_rust', '-C', 'opt-level=0', '-C', 'force-frame-pointers=yes', '-g', ...mangling.flags, '-o', prog, SOURCE], { encoding: 'utf8', timeout: 120_000 });
    if (build.status !== 0 && mangling.flags.length > 0 && /unstable-options|symbol-mangling-version/.test(build.stderr)) {
      t.skip(`this rustc does not take ${mangling.flags.join(' ')}: ${build.stderr.trim().split('\n')[0]}`);
      return;
    }
    assert.equal(build.status, 0, `rustc: ${build.stderr}`);
    const symbols = execFileSync('nm', ['--defined-only', '--format=just-symbols', prog], { encoding: 'utf8' });
    const addMangled = mangling.mangled.exec(symbols)?.[0];
    if (!addMangled) {
      // A rustc whose default is v0 makes no legacy names without -Z unstable-options.
      assert.equal(mangling.name, 'legacy', `no ${mangling.name} name for Accumulator::add in\n${symbols}`);
      t.skip('this rustc does not mangle the legacy way by default');
      return;
    }

    const log = join(dir, `${mangling.name}.pmclog`);
    const out = {
      graph: join(dir, `${mangling.name}.graph`),
      annotate: join(dir, `${mangling.name}.a`),
      html: join(dir, `${mangling.name}.html`),
      speedscope: join(dir, `${mangling.name}.speedscope.json`),
      pprof: join(dir, `${mangling.name}.pb.gz`),
      calltree: join(dir, `${mangling.name}.callgrind`),
      pcs: join(dir, `${mangling.name}.pcs`),
    };
    // About half a second of CPU; add and what it calls take nearly all of it.
    ok(pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--', prog, '100000000'], { cwd: dir }), 'pmcstat -P cpu-clock');
    ok(
      pmcstat(['-R', log, '-G', out.graph, '-a', out.annotate, '--flamegraph', out.html, '--speedscope', out.speedscope, '--pprof', out.pprof, '-F', out.calltree, '-m', out.pcs]),
      'pmcstat -R -G -a --flamegraph --speedscope --pprof -F -m',
    );
    // KCachegrind's file and the sampled PCs name it too, never mangled.
    assert.match(readFileSync(out.calltree, 'utf8'), new RegExp(`^fn=${escape(mangling.add)}$`, 'm'));
    assert.match(readFileSync(out.pcs, 'utf8'), new RegExp(`^0x[0-9a-f]+ ${escape(mangling.add)} 0x`, 'm'));
    for (const file of [out.calltree, out.pcs, out.annotate]) assert.ok(!readFileSync(file, 'utf8').includes(addMangled), `no mangled name in ${file}`);

    // -G: the hottest function first, its callers under it.
    const graph = readFileSync(out.graph, 'utf8').split('\n');
    const first = graph.findIndex((l) => /^\d/.test(l));
    assert.match(graph[first], new RegExp(`^\\S+%\\s+\\[\\d+\\]\\s+${escape(mangling.add)} @ ${escape(prog)}$`), graph.slice(0, 20).join('\n'));
    assert.match(graph[first + 1], new RegExp(`^ \\S+%\\s+\\[\\d+\\]\\s+${escape(SPIN)}$`));
    assert.match(graph[first + 2], new RegExp(`^  \\S+%\\s+\\[\\d+\\]\\s+${escape(MAIN)}$`));
    assert.ok(!graph.some((l) => l.includes(addMangled)), 'no mangled name left in -G');

    // Top mode on the log: the same function on the first row.
    const top = ok(pmcstat(['-T', '-R', log]), 'pmcstat -T -R').stdout.split('\n');
    const row = top.find((l) => /^\s+\d+\.\d\d\s+\d+\.\d\d\s/.test(l));
    assert.ok(row?.endsWith(` ${mangling.add}`), top.join('\n'));

    // The flame graph's data: add has the most samples where they were taken, under spin.
    const html = readFileSync(out.html, 'utf8');
    const stacks = pageJson(html, 'profile-stacks') as number[][][];
    const meta = pageJson(html, 'profile-meta') as { frames: [string, number, number][] };
    const names = meta.frames.map((f) => f[0]);
    const leaves = new Map<string, number>();
    for (const [, count, ...frames] of stacks[0]) add(leaves, names[frames[frames.length - 1]], count);
    assert.equal(hottest(leaves), mangling.add);
    assert.ok(stacks[0].some(([, , ...f]) => names[f[f.length - 1]] === mangling.add && names[f[f.length - 2]] === SPIN), 'add under spin');
    assert.deepEqual(names.filter((n) => MANGLED.test(n)), [], 'no mangled name in the flame graph');

    // speedscope: every frame readable, add among them.
    const speedscope = JSON.parse(readFileSync(out.speedscope, 'utf8')) as { shared: { frames: { name: string }[] } };
    const ssNames = speedscope.shared.frames.map((f) => f.name);
    assert.ok(ssNames.includes(mangling.add));
    assert.deepEqual(ssNames.filter((n) => MANGLED.test(n)), []);

    // pprof: the function's name is readable, its system name the mangled one; it has the most flat samples.
    const profile = Profile.decode(gunzipSync(readFileSync(out.pprof)));
    const str = (i: unknown): string => profile.stringTable.strings[Number(i)];
    const fn = profile.function.find((f) => str(f.name) === mangling.add);
    assert.ok(fn, 'pprof has the function');
    assert.equal(str(fn.systemName), addMangled);
    const functionOf = new Map(profile.location.map((l) => [Number(l.id), Number(l.line[0].functionId)]));
    const nameOf = new Map(profile.function.map((f) => [Number(f.id), str(f.name)]));
    const flat = new Map<string, number>();
    for (const s of profile.sample) add(flat, nameOf.get(functionOf.get(Number(s.locationId[0]))!)!, Number(s.value[0]));
    assert.equal(hottest(flat), mangling.add);
    if (!noGo) {
      const r = spawnSync('go', ['tool', 'pprof', '-top', out.pprof], { encoding: 'utf8', env: { ...process.env, HOME: dir, GOCACHE: join(dir, 'gocache') }, timeout: 120_000 });
      assert.equal(r.status, 0, r.stderr);
      const firstRow = r.stdout.split('\n').find((l) => /^\s*[\d.]+\w*\s+[\d.]+%\s+[\d.]+%/.test(l));
      assert.ok(firstRow?.endsWith(` ${mangling.add}`), r.stdout);
    }

    // -a: add's PCs are on the loop's lines of the source.
    const annotated = readFileSync(out.annotate, 'utf8').split('\n').filter((l) => l.includes(` ${mangling.add} ${prog} `));
    assert.ok(annotated.length > 0, 'add in -a');
    const lines = new Map<string, number>();
    for (const l of annotated) add(lines, l.slice(l.lastIndexOf(' ') + 1), 1);
    assert.ok(loopLines.map((n) => `${SOURCE}:${n}`).includes(hottest(lines)), [...lines].join('\n'));
  });
}
