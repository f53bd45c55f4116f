// pmcd --metrics: pmcd's statistics and its system counting PMCs (one per
// configured event per online CPU) in Prometheus's text format, on loopback;
// and Debian's real Prometheus server scraping pmcd and answering a query
// for context switches through its HTTP API.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { onlineCpus } from '../src/lib/index.js';
import { TestPmcd, waitFor } from './pmcd-fixture.js';

async function startWithMetrics(): Promise<{ pmcd: TestPmcd; url: string }> {
  const pmcd = await TestPmcd.start({ args: ['--metrics', '127.0.0.1:0'], config: ['pmcd.metrics_events = context-switches,page-faults,cpu-migrations'] });
  const m = /metrics on (http:\/\/127\.0\.0\.1:\d+\/metrics)/.exec(pmcd.stderr);
  assert.ok(m, pmcd.stderr);
  return { pmcd, url: m[1] };
}

/** value of a sample line `name{labels} value` of the exposition text. */
function sample(text: string, name: string, labels: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

test('pmcd --metrics: statistics and per-CPU system counts in Prometheus format, on loopback', async () => {
  const { pmcd, url } = await startWithMetrics();
  const lib = await pmcd.libpmc();
  try {
    const id = await lib.allocate('task-clock', 'TC');
    await lib.attach(id, 0);
    await lib.start(id);
    const first = await (await fetch(url)).text();
    // Context switches happen on every CPU of a live machine; make some.
    for (let i = 0; i < 50; i++) await new Promise((r) => setTimeout(r, 1));
    const res = await fetch(url);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    assert.match(text, /^# TYPE tspmc_system_events_total counter$/m);
    for (const cpu of onlineCpus()) {
      for (const event of ['context-switches', 'page-faults', 'cpu-migrations']) {
        assert.notEqual(sample(text, 'tspmc_system_events_total', `event="${event}",cpu="${cpu}"`), undefined, `${event} on CPU ${cpu}`);
      }
    }
    const sum = (t: string): number => onlineCpus().reduce((n, cpu) => n + sample(t, 'tspmc_system_events_total', `event="context-switches",cpu="${cpu}"`)!, 0);
    assert.ok(sum(text) > sum(first), 'context switches keep being counted');
    // pmcd's own system PMCs and this client's TC PMC.
    assert.equal(sample(text, 'tspmc_pmcs', 'mode="TC"'), 1);
    assert.equal(sample(text, 'tspmc_pmcs', 'mode="SC"'), 3 * onlineCpus().length);
    assert.equal(Number(/^tspmc_owners (\d+)$/m.exec(text)?.[1]), 2);
    assert.match(text, /^tspmc_samples_total \d+$/m);
    assert.match(text, /^tspmc_samples_dropped_total \d+$/m);
    assert.ok(sample(text, 'tspmc_rows_in_use', 'cpu="0"')! >= 3);
    assert.equal((await fetch(url.replace('/metrics', '/other'))).status, 404);
  } finally {
    await lib.close();
    await pmcd.cleanup();
  }
});

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

const havePrometheus = spawnSync('prometheus', ['--version']).status === 0;

test('Prometheus scrapes pmcd; a query through its HTTP API returns context switches per CPU', { skip: !havePrometheus && 'needs prometheus (Debian package; .ci/run installs it)' }, async (t) => {
  const { pmcd, url } = await startWithMetrics();
  const dir = join(pmcd.dir, 'prometheus');
  mkdirSync(dir);
  const target = new URL(url).host;
  writeFileSync(
    join(dir, 'prometheus.yml'),
    ['global:', '  scrape_interval: 1s', 'scrape_configs:', '  - job_name: pmcd', '    static_configs:', `      - targets: ['${target}']`, ''].join('\n'),
  );
  const port = await freePort();
  let prom: ChildProcess | undefined;
  let log = '';
  try {
    prom = spawn('prometheus', [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    prom.stderr!.setEncoding('utf8').on('data', (d: string) => (log += d));
    const query = `http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent('tspmc_system_events_total{event="context-switches"}')}`;
    type Answer = { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
    let answer: Answer | undefined;
    const ms = await waitFor(
      'Prometheus to have scraped pmcd',
      async () => {
        try {
          answer = (await (await fetch(query)).json()) as Answer;
          return answer.status === 'success' && answer.data.result.length === onlineCpus().length;
        } catch {
          return false; // not listening yet
        }
      },
      60_000,
    ).catch((e: Error) => {
      throw new Error(`${e.message}\n${log.slice(-2000)}`);
    });
    t.diagnostic(`Prometheus answered after ${ms} ms`);
    const series = answer!.data.result;
    assert.deepEqual(series.map((s) => Number(s.metric.cpu)).sort(), onlineCpus());
    for (const s of series) {
      assert.equal(s.metric.job, 'pmcd');
      assert.equal(s.metric.instance, target);
      assert.ok(Number(s.value[1]) > 0, `CPU ${s.metric.cpu}: ${s.value[1]} context switches`);
    }
  } finally {
    if (prom && prom.exitCode === null) {
      const exited = once(prom, 'exit');
      prom.kill('SIGTERM');
      const guard = setTimeout(() => prom!.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(guard);
    }
    await pmcd.cleanup();
  }
});
