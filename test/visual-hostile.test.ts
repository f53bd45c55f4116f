// Names from the profiled program are data, not markup: a JIT map (which a
// profiled process writes itself) naming functions with HTML, quotes, a
// script end tag, `;` and non-ASCII text must come out of every format
// whole and inert: the flame graph page keeps its own scripts, the JSON
// and protobuf outputs read back to the same names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import type { LogRecord } from '../src/log/records.js';
import { analyzeLog } from '../src/report/analyze.js';
import { analysisNeeds, writeOutputs } from '../src/report/outputs.js';
import { artifactPath, launchChromium, noChromium } from './browser-fixture.js';
import { rec, tempDir } from './report-fixture.js';

const dir = tempDir('visual-hostile-');
const PID = 4242;
const NAMES = ['</script><script>window.pwned=1</script>', '<img src=x onerror="window.pwned=2">', 'a;b "c" \'d\' & é✓ x', 'plain'];
// perf-PID.map: START SIZE name, one function per 0x100 bytes.
writeFileSync(join(dir, `perf-${PID}.map`), NAMES.map((n, i) => `${(0x7f0000001000 + i * 0x100).toString(16)} 100 ${n}`).join('\n') + '\n');
const pc = (i: number): bigint => BigInt(0x7f0000001000 + i * 0x100 + 8);

async function outputs(): Promise<{ html: string; speedscope: string; pprof: string }> {
  const records: LogRecord[] = [rec.allocDyn(1, 'cpu-clock')];
  // Each hostile function called from "plain", sampled i + 1 times.
  for (let i = 0; i < 3; i++) for (let k = 0; k <= i; k++) records.push(rec.callchain(PID, 1, [pc(i), pc(3) + 1n]));
  const files = { html: join(dir, 'names.html'), speedscope: join(dir, 'names.json'), pprof: join(dir, 'names.pb.gz') };
  const targets = { flamegraph: files.html, speedscope: files.speedscope, pprof: files.pprof };
  const result = await analyzeLog(records, { perfMapDir: dir, needs: analysisNeeds(targets) });
  await writeOutputs(result, targets);
  return files;
}

test('hostile names: the page keeps its scripts; speedscope and pprof read back the same names', async () => {
  const files = await outputs();
  const html = readFileSync(files.html, 'utf8');
  // The page's own scripts only: the two JSON blocks, d3, d3-flame-graph, the page's script.
  assert.equal(html.match(/<script\b/g)?.length, 5);
  assert.equal(html.match(/<\/script>/g)?.length, 5);
  assert.ok(!html.includes('<img src=x'));
  const speedscope = JSON.parse(readFileSync(files.speedscope, 'utf8')) as { shared: { frames: { name: string }[] } };
  for (const n of NAMES) assert.ok(speedscope.shared.frames.some((f) => f.name === n), n);
  const profile = Profile.decode(gunzipSync(readFileSync(files.pprof)));
  for (const n of NAMES) assert.ok(profile.stringTable.strings.includes(n), n);
});

test('hostile names in Chromium: shown as text, nothing they contain runs', { skip: noChromium }, async (t) => {
  const files = await outputs();
  const browser = await launchChromium();
  t.after(() => browser.close());
  const page = await browser.context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  await page.goto(`file://${files.html}`);
  await page.waitForSelector('g.frame');
  const shown = await page.evaluate(() => [...document.querySelectorAll('g.frame')].map((g) => g.getAttribute('name')));
  for (const n of NAMES) assert.ok(shown.includes(n), `${n} drawn`);
  await page.hover(`g.frame[name="${NAMES[1].replace(/"/g, '\\"')}"]`);
  const tip = await page.waitForSelector('.d3-flame-graph-tip', { state: 'visible' });
  assert.ok((await tip.textContent())?.includes(NAMES[1]), 'the tooltip shows the name as text');
  assert.equal(await page.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  assert.equal(await page.locator('.d3-flame-graph-tip img').count(), 0);
  assert.deepEqual(errors, []);
  await page.screenshot({ path: artifactPath('flamegraph-hostile-names.png') });
});
