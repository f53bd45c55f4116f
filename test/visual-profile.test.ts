// The visible and portable profiles of a known workload, end to end: record
// `hotcold` (main -> work -> hot three times as long as main -> work ->
// cold) with pmcstat, write the flame graph, pprof and speedscope files
// straight from the recording, and check each with the program that reads
// it: the HTML page in real headless Chromium, the pprof file decoded back
// and read by `go tool pprof`, the speedscope file against speedscope's own
// schema. Expected counts come from the folded stacks of the same log.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { Ajv } from 'ajv';
import { artifactPath, launchChromium, noChromium } from './browser-fixture.js';
import { buildC, fixture, foldedStacks, logStats, ok, pmcstat, removePerfMaps, tempDir } from './cli-fixture.js';
import { hasTool } from './report-fixture.js';

// The analysis caches parsed kallsyms: not in the user's cache directory.
process.env.TSPMC_CACHE_DIR = '';

const dir = tempDir('visual-profile-');
const prog = buildC(dir, 'sampling-hotcold.c', 'hotcold', ['-g']);
const log = join(dir, 'hotcold.pmclog');
const out = { html: join(dir, 'recorded.html'), pprof: join(dir, 'hotcold.pb.gz'), speedscope: join(dir, 'hotcold.speedscope.json') };

// Half a second or so of CPU; hot does three times cold's work.
ok(
  pmcstat(['-n', '100000', '-P', 'cpu-clock', '-O', log, '--flamegraph', out.html, '--pprof', out.pprof, '--speedscope', out.speedscope, '--', prog, '6', '150000000', '50000000'], {
    cwd: dir,
  }),
  'pmcstat -P cpu-clock --flamegraph --pprof --speedscope',
);
/** Folded stacks of the log, kernel and JIT marks removed: "process;outermost;...;sampled" -> samples. */
const stacks = new Map<string, number>();
for (const [k, n] of foldedStacks(log)) {
  const key = k.replace(/_\[[kj]\](?=;|$)/g, '');
  stacks.set(key, (stacks.get(key) ?? 0) + n);
}
const total = [...stacks.values()].reduce((a, b) => a + b, 0);
const where = (match: (frames: string[]) => boolean): number => [...stacks].reduce((s, [k, n]) => s + (match(k.split(';').slice(1)) ? n : 0), 0);
const underWork = (fn: string): number => where((f) => f.at(-1) === fn && f.at(-2) === 'work');

test('the workload is what the checks below expect: hot has most of work\'s samples; the stacks hold every sample', () => {
  assert.equal(total, logStats(log).samples);
  assert.ok(underWork('hot') > underWork('cold') && underWork('cold') > 0, `hot ${underWork('hot')}, cold ${underWork('cold')}`);
});

test('--flamegraph: the same page from the recording and from -R; self-contained', () => {
  const fromLog = join(dir, 'from-log.html');
  ok(pmcstat(['-R', log, '--flamegraph', fromLog]), 'pmcstat -R --flamegraph');
  const html = readFileSync(out.html, 'utf8');
  assert.equal(readFileSync(fromLog, 'utf8'), html);
  assert.doesNotMatch(html, /<(script|link|img)[^>]+(src|href)=/i, 'no external scripts, styles or images');
});

test('flame graph in Chromium: widest frame, zoom, reset, search share, tooltip, views', { skip: noChromium }, async (t) => {
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  const requests: string[] = [];
  page.on('request', (r) => {
    if (!r.url().startsWith('file:')) requests.push(r.url());
  });
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${out.html}`);
  await page.waitForSelector('g.frame');

  // The header: event, rate, samples, drops.
  const summary = await page.textContent('#summary');
  assert.match(summary ?? '', new RegExp(`event cpu-clock · 100,000 ns per sample · ${total.toLocaleString('en-US')} samples · 0 dropped · 0 lost`));

  /** Frames drawn: name, caller, samples, and the rectangle's width in pixels. */
  const drawn = (): Promise<{ name: string; caller: string; value: number; width: number; fill: string; kind: string }[]> =>
    page.evaluate(() =>
      // d3 binds each frame's hierarchy node to its <g>.
      [...document.querySelectorAll('g.frame')].map((g) => {
        const d = (g as unknown as { __data__: { data: { name: string; value: number; kind: string }; parent: { data: { name: string } } | null } }).__data__;
        const rect = g.querySelector('rect')!;
        return { name: d.data.name, caller: d.parent?.data.name ?? '', value: d.data.value, width: Number(rect.getAttribute('width')), fill: rect.getAttribute('fill') ?? '', kind: d.data.kind };
      }),
    );
  // Transitions ended: no frame is moving any more.
  const settle = async (): Promise<void> => {
    await page.waitForFunction(() => [...document.querySelectorAll('g.frame, g.frame rect')].every((e) => !(e as unknown as { __transition?: object }).__transition));
  };
  await settle();
  let frames = await drawn();
  const hot = frames.find((f) => f.name === 'hot' && f.caller === 'work');
  assert.ok(hot, 'a frame hot under work');
  assert.equal(hot.value, underWork('hot'), 'hot under work carries the samples the folded stacks give it');
  const siblings = frames.filter((f) => f.caller === 'work' && f.name !== 'hot');
  assert.ok(siblings.length > 0 && siblings.every((s) => s.width < hot.width), `hot (${hot.width}px) is wider than ${siblings.map((s) => `${s.name} ${s.width}px`).join(', ')}`);
  const work = frames.find((f) => f.name === 'work')!;
  assert.ok(Math.abs(hot.width / work.width - hot.value / work.value) < 0.01, 'widths are proportional to samples');
  // Colours by kind: user frames red, kernel frames orange (green is reserved for JIT).
  const rgb = (fill: string): number[] => fill.match(/\d+/g)!.map(Number);
  const [r, g, b] = rgb(hot.fill);
  assert.ok(r > 190 && g < 140 && b < 140, `hot is a red user frame: ${hot.fill}`);
  for (const k of frames.filter((f) => f.kind === 'kernel')) assert.equal(rgb(k.fill)[2], 0, `kernel frame ${k.name} is orange: ${k.fill}`);

  // Tooltip on hover: name, samples, share.
  await page.hover('g.frame[name="hot"]');
  const tip = await page.waitForSelector('.d3-flame-graph-tip', { state: 'visible' });
  assert.match((await tip.textContent()) ?? '', new RegExp(`hot.*${hot.value.toLocaleString('en-US')} samples, ${((100 * hot.value) / total).toFixed(2)}% of all`));

  // Click zooms: hot fills the width, cold is gone; reset brings work back.
  const fullWidth = Number(await page.getAttribute('#chart svg', 'width'));
  const hotUnderWork = await page.evaluateHandle(
    () => [...document.querySelectorAll('g.frame')].find((g) => (g as unknown as { __data__: { parent: { data: { name: string } } | null } }).__data__.parent?.data.name === 'work' && g.getAttribute('name') === 'hot')!,
  );
  await hotUnderWork.asElement()!.click();
  await page.waitForFunction((full) => [...document.querySelectorAll('g.frame[name="hot"] rect')].some((r) => Math.abs(Number(r.getAttribute('width')) - full) < 0.5), fullWidth);
  await settle();
  frames = await drawn();
  assert.ok(Math.abs(frames.find((f) => f.name === 'hot' && f.caller === 'work')!.width - fullWidth) < 0.5, 'hot fills the width');
  assert.ok(frames.filter((f) => f.name === 'cold').every((f) => f.width === 0), 'cold is hidden while zoomed on hot');
  await page.click('#reset');
  await page.waitForFunction(() => [...document.querySelectorAll('g.frame[name="cold"]')].some((g) => Number(g.getAttribute('width')) > 0));

  // Search highlights hot and gives its share: the samples with hot on the stack.
  await page.fill('#search', 'hot');
  await page.waitForFunction(() => document.querySelector('#search-share')!.textContent !== '');
  const withHot = where((f) => f.some((name) => name.toLowerCase().includes('hot')));
  assert.equal(Number(await page.getAttribute('#search-share', 'data-samples')), withHot);
  assert.match((await page.textContent('#search-share')) ?? '', new RegExp(`\\(${((100 * withHot) / total).toFixed(2)}%\\)`));
  await settle();
  frames = await drawn();
  assert.equal(frames.find((f) => f.name === 'hot' && f.caller === 'work')!.fill, '#e600e6', 'hot is highlighted');
  assert.notEqual(frames.find((f) => f.name === 'cold')!.fill, '#e600e6', 'cold is not');
  await page.screenshot({ path: artifactPath('flamegraph-hotcold.png') });

  // Per process: the processes sit under the root; icicle: the root is drawn at the top.
  await page.selectOption('#view', 'process');
  await page.waitForSelector('g.frame[name="hotcold"]');
  frames = await drawn();
  assert.equal(frames.find((f) => f.name === 'hotcold')!.caller, 'all');
  await page.check('#inverted');
  await page.waitForFunction(() => /translate\([\d.]+,0\)/.test(document.querySelector('g.frame[name="all"]')!.getAttribute('transform') ?? ''));

  assert.deepEqual(errors, [], 'no script errors');
  assert.deepEqual(requests, [], 'no network requests');
});

test('flame graph in Chromium: a Node.js workload\'s JIT frames are green, its kernel frames orange', { skip: noChromium }, async (t) => {
  const html = join(dir, 'node.html');
  const run = pmcstat(['-n', '100000', '-P', 'cpu-clock', '--flamegraph', html, '--', process.execPath, '--perf-basic-prof', fixture('sampling-hotloop.js'), '500']);
  t.after(() => removePerfMaps(run.stdout));
  ok(run, 'pmcstat on node');
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  await page.goto(`file://${html}`);
  await page.waitForSelector('g.frame');
  const kinds = await page.evaluate(() =>
    [...document.querySelectorAll('g.frame')].map((g) => {
      const d = (g as unknown as { __data__: { data: { name: string; kind: string } } }).__data__;
      return { name: d.data.name, kind: d.data.kind, fill: g.querySelector('rect')!.getAttribute('fill') ?? '' };
    }),
  );
  const rgb = (fill: string): number[] => fill.match(/\d+/g)!.map(Number);
  const hot = kinds.find((k) => /hotLoop/.test(k.name));
  assert.ok(hot, 'a frame for hotLoop');
  assert.equal(hot.kind, 'jit');
  const [r, g, b] = rgb(hot.fill);
  assert.ok(g > r && g > b, `hotLoop is green: ${hot.fill}`);
  assert.ok(kinds.some((k) => k.kind === 'kernel'), 'kernel frames too');
  for (const k of kinds.filter((x) => x.kind === 'kernel')) assert.ok(rgb(k.fill)[0] > rgb(k.fill)[1] && rgb(k.fill)[2] === 0, `${k.name} is orange: ${k.fill}`);
});

test('--pprof: decoded back, the samples match the log', () => {
  const profile = Profile.decode(gunzipSync(readFileSync(out.pprof)));
  const str = (i: number | bigint): string => profile.stringTable.strings[Number(i)];
  assert.deepEqual(
    profile.sampleType.map((v) => `${str(v.type)}/${str(v.unit)}`),
    ['cpu-clock_samples/count', 'cpu-clock/nanoseconds'],
  );
  assert.equal(Number(profile.period), 100000);
  assert.equal(`${str(profile.periodType!.type)}/${str(profile.periodType!.unit)}`, 'cpu-clock/nanoseconds');
  const fnName = new Map(profile.function.map((f) => [Number(f.id), str(f.name)]));
  const locName = new Map(profile.location.map((l) => [Number(l.id), fnName.get(Number(l.line[0].functionId))!]));
  const decoded = new Map<string, number>();
  for (const s of profile.sample) {
    const process = str(s.label.find((l) => str(l.key) === 'process')!.str);
    const key = [process, ...s.locationId.map((id) => locName.get(Number(id))!).reverse()].join(';');
    decoded.set(key, (decoded.get(key) ?? 0) + Number(s.value[0]));
    assert.equal(Number(s.value[1]), Number(s.value[0]) * 100000, 'event value = samples x rate');
  }
  assert.deepEqual(decoded, stacks);
  // A location per PC; the program's carry their source lines (it has DWARF).
  const source = fixture('sampling-hotcold.c');
  const fn = new Map(profile.function.map((f) => [Number(f.id), f]));
  const ours = profile.location.filter((l) => ['hot', 'cold', 'work', 'main'].includes(str(fn.get(Number(l.line[0].functionId))!.name)));
  assert.ok(ours.length > 4, 'more than one location per function');
  for (const l of ours) {
    assert.equal(str(fn.get(Number(l.line[0].functionId))!.filename), source);
    assert.ok(Number(l.line[0].line) > 0);
  }
  // The program's mapping comes first and carries its build id.
  const main = profile.mapping[0];
  assert.equal(str(main.filename), prog);
  const readelf = execFileSync('readelf', ['-n', prog], { encoding: 'utf8' });
  assert.equal(str(main.buildId), /Build ID: ([0-9a-f]+)/.exec(readelf)?.[1]);
});

const goPprof = (args: string[]) =>
  spawnSync('go', ['tool', 'pprof', ...args], { encoding: 'utf8', env: { ...process.env, HOME: dir, GOCACHE: join(dir, 'gocache'), GOFLAGS: '-mod=mod' }, timeout: 120_000 });

test('--pprof: go tool pprof -top lists hot first', { skip: !hasTool('go') && 'go is not installed (apt-get install golang-go; .ci/run does)' }, () => {
  const r = goPprof(['-top', out.pprof]);
  assert.equal(r.status, 0, r.stderr);
  const rows = r.stdout.split('\n').filter((l) => /^\s*[\d.]+\w*\s+[\d.]+%\s+[\d.]+%/.test(l));
  assert.match(rows[0] ?? '', /\shot$/, r.stdout);
  assert.match(r.stdout, /^Type: cpu-clock$/m);
});

test('--pprof: go tool pprof -list shows hot\'s samples on the lines of its loop', { skip: !hasTool('go') && 'go is not installed (apt-get install golang-go; .ci/run does)' }, () => {
  const lines = readFileSync(fixture('sampling-hotcold.c'), 'utf8').split('\n');
  const start = lines.findIndex((l) => l.startsWith('void hot('));
  const forLine = start + lines.slice(start).findIndex((l) => l.includes('for (')) + 1;
  const r = goPprof(['-list', '^hot$', '-sample_index', 'cpu-clock_samples', out.pprof]);
  assert.equal(r.status, 0, r.stderr);
  // "  FLAT  CUM  LINE: source", with "." for nothing.
  const flat = new Map<number, number>();
  for (const m of r.stdout.matchAll(/^\s+(\d+|\.)\s+(?:\d+|\.)\s+(\d+):/gm)) if (m[1] !== '.') flat.set(Number(m[2]), Number(m[1]));
  // The loop's two lines hold hot's samples; a sample may also land in the
  // prologue or epilogue, which the compiler puts on the braces' lines.
  const braces = [start + 2, forLine + 2];
  const lineKeys = [...flat.keys()].sort((a, b) => a - b);
  assert.ok(lineKeys.includes(forLine) && lineKeys.includes(forLine + 1), r.stdout);
  assert.deepEqual(lineKeys.filter((l) => l !== forLine && l !== forLine + 1 && !braces.includes(l)), [], r.stdout);
  const total = [...flat.values()].reduce((a, b) => a + b, 0);
  assert.equal(total, where((f) => f.at(-1) === 'hot'));
  assert.ok(flat.get(forLine)! + flat.get(forLine + 1)! >= total * 0.99, r.stdout);
  const top = goPprof(['-top', '-lines', out.pprof]);
  assert.match(top.stdout, new RegExp(`\\shot ${fixture('sampling-hotcold.c')}:${forLine + 1}$`, 'm'));
});

test('--pprof with --freq: cpu-clock samples weigh 1e9/freq ns each; page-faults by frequency are counted only, and the profile says why', () => {
  const file = join(dir, 'freq.pb.gz');
  ok(pmcstat(['--freq', '2000', '-P', 'cpu-clock', '--freq', '1000', '-P', 'page-faults', '--pprof', file, '--', prog, '1', '50000000', '10000000'], { cwd: dir }), 'pmcstat --freq --pprof');
  const profile = Profile.decode(gunzipSync(readFileSync(file)));
  const str = (i: number | bigint): string => profile.stringTable.strings[Number(i)];
  assert.deepEqual(
    profile.sampleType.map((v) => `${str(v.type)}/${str(v.unit)}`),
    ['cpu-clock_samples/count', 'cpu-clock/nanoseconds', 'page-faults_samples/count'],
  );
  assert.equal(Number(profile.period), 500_000);
  assert.equal(`${str(profile.periodType!.type)}/${str(profile.periodType!.unit)}`, 'cpu-clock/nanoseconds');
  let clock = 0;
  let faults = 0;
  for (const s of profile.sample) {
    assert.equal(Number(s.value[1]), Number(s.value[0]) * 500_000);
    clock += Number(s.value[0]);
    faults += Number(s.value[2]);
  }
  assert.ok(clock > 0 && faults > 0, `${clock} cpu-clock and ${faults} page-faults samples`);
  assert.ok(profile.comment.map(str).some((c) => /^page-faults: sampled at 1000 Hz; .*not record.*counted only$/.test(c)), profile.comment.map(str).join('\n'));
});

interface SpeedscopeFile {
  shared: { frames: { name: string }[] };
  activeProfileIndex: number;
  profiles: { name: string; unit: string; startValue: number; endValue: number; samples: number[][]; weights: number[] }[];
}

test('--speedscope: valid against speedscope\'s file-format schema; one profile per thread with all samples', () => {
  const require = createRequire(import.meta.url);
  const schemaFile = join(dirname(require.resolve('speedscope/package.json')), 'dist/release/file-format-schema.json');
  const schema = JSON.parse(readFileSync(schemaFile, 'utf8'));
  const file = JSON.parse(readFileSync(out.speedscope, 'utf8')) as SpeedscopeFile;
  const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
  assert.ok(validate(structuredClone(file)), JSON.stringify(validate.errors, null, 1));
  const frames: { name: string }[] = file.shared.frames;
  let samples = 0;
  const leaves = new Map<string, number>();
  for (const p of file.profiles) {
    assert.match(p.name, /^cpu-clock: \S+ pid \d+ tid \d+$/);
    assert.equal(p.unit, 'nanoseconds');
    assert.equal(p.samples.length, p.weights.length);
    assert.equal(p.endValue - p.startValue, p.weights.reduce((a, b) => a + b, 0));
    p.samples.forEach((stack, i) => {
      assert.ok(stack.every((f) => f >= 0 && f < frames.length));
      const leaf = frames[stack[stack.length - 1]].name;
      leaves.set(leaf, (leaves.get(leaf) ?? 0) + p.weights[i] / 100000);
    });
    samples += p.weights.reduce((a, b) => a + b, 0) / 100000;
  }
  assert.equal(samples, total);
  assert.equal(leaves.get('hot'), where((f) => f.at(-1) === 'hot'));
  const main = file.profiles[file.activeProfileIndex];
  assert.match(main.name, / hotcold pid /);
});

test('-a: the hot loop\'s samples carry its source line (DWARF)', () => {
  const source = readFileSync(fixture('sampling-hotcold.c'), 'utf8').split('\n');
  const start = source.findIndex((l) => l.startsWith('void hot('));
  const loopLine = start + source.slice(start).findIndex((l) => l.includes('sink += i')) + 1;
  const annotated = join(dir, 'chains.txt');
  ok(pmcstat(['-R', log, '-a', annotated]), 'pmcstat -R -a');
  const leaves = readFileSync(annotated, 'utf8')
    .split('--\n')
    .map((chain) => chain.split('\n')[0])
    .filter((l) => l.split(' ')[1] === 'hot');
  assert.ok(leaves.length > 0);
  const atLoop = leaves.filter((l) => l.endsWith(`sampling-hotcold.c:${loopLine}`)).length;
  // Most of hot's time is its loop (the rest: the loop test and increment, on the for line).
  assert.ok(atLoop > leaves.length / 4, `${atLoop} of ${leaves.length} samples in hot at line ${loopLine}:\n${leaves.slice(0, 5).join('\n')}`);
  assert.ok(leaves.every((l) => /sampling-hotcold\.c:\d+$/.test(l)), 'every sample in hot has a line');
});
