// --speedscope: speedscope's file format (file-format-schema.json of the
// speedscope package): shared frames, and one sampled profile per PMC,
// process and thread, its stacks going from the outermost caller to the
// sampled function, each weighed by its samples. Clock events (cpu-clock,
// task-clock) are weighed in nanoseconds where the log tells their period
// (sample-period.ts), other events in samples.
import type { AnalysisResult } from './analyze.js';
import { stacksOf } from './callgraph.js';
import { samplePeriod } from './sample-period.js';

const SPEEDSCOPE_SCHEMA = 'https://www.speedscope.app/file-format-schema.json';

interface ThreadProfile {
  pmc: number;
  task: number;
  samples: number[][];
  weights: number[];
  total: number;
}

export function* formatSpeedscope(result: AnalysisResult): Generator<string> {
  const { frames: table, tasks } = result;
  const frameIndex = new Map<number, number>();
  const frames: { name: string; file?: string }[] = [];
  const indexOf = (id: number): number => {
    let f = frameIndex.get(id);
    if (f === undefined) {
      const image = table.image(id);
      frames.push(image ? { name: table.name(id), file: image.path } : { name: table.name(id) });
      frameIndex.set(id, (f = frames.length - 1));
    }
    return f;
  };
  const list: ThreadProfile[] = [];
  for (const profile of result.profiles) {
    const period = samplePeriod(profile);
    const weight = period?.unit === 'nanoseconds' ? Number(period.value) : 1;
    const byTask = new Map<number, ThreadProfile>();
    for (const s of stacksOf(profile)) {
      let t = byTask.get(s.task);
      if (!t) byTask.set(s.task, (t = { pmc: profile.index, task: s.task, samples: [], weights: [], total: 0 }));
      t.samples.push(s.frames.map(indexOf));
      t.weights.push(s.count * weight);
      t.total += s.count * weight;
    }
    list.push(...[...byTask.values()].sort((a, b) => tasks.pid(a.task) - tasks.pid(b.task) || tasks.tid(a.task) - tasks.tid(b.task)));
  }
  let active = 0;
  list.forEach((t, i) => {
    if (t.total > list[active].total) active = i;
  });
  yield `{"$schema":${JSON.stringify(SPEEDSCOPE_SCHEMA)},"exporter":"tspmc","name":"tspmc profile","activeProfileIndex":${active},`;
  yield `"shared":{"frames":${JSON.stringify(frames)}},"profiles":[`;
  for (const [i, t] of list.entries()) {
    const profile = result.profiles[t.pmc];
    const clock = samplePeriod(profile)?.unit === 'nanoseconds';
    const head = {
      type: 'sampled',
      name: `${profile.name}: ${result.processNames[tasks.process(t.task)]} pid ${tasks.pid(t.task)} tid ${tasks.tid(t.task)}`,
      unit: clock ? 'nanoseconds' : 'none',
      startValue: 0,
      endValue: t.total,
    };
    yield `${i > 0 ? ',' : ''}${JSON.stringify(head).slice(0, -1)},"samples":${JSON.stringify(t.samples)},"weights":${JSON.stringify(t.weights)}}`;
  }
  yield ']}\n';
}
