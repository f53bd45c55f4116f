// pmcstat -F: the callgrind format KCachegrind reads. One cost column per
// PMC (`events: NAME_INDEX ...`, non-alphanumerics made `_`), positions
// `instr line`: the function's link-time address and line 0 (there is no
// line information, so the source file is `???`, as valgrind writes it).
// A fake ROOT function calls every outermost frame, as pmcstat does; each
// function lists its self cost and, per callee, `calls=` and the cost spent
// below that call. The call count is an estimate: the number of samples in
// which the call was on the stack.
import type { AnalysisResult } from './analyze.js';
import { stacksOf } from './callgraph.js';
import { formatPointer } from './address.js';
import type { FrameTable } from './frames.js';

interface Arc {
  cost: number[];
  calls: number;
}

const ROOT = -1;

export function* formatCalltree(result: AnalysisResult): Generator<string> {
  const nev = result.profiles.length;
  const frames = result.frames;
  const zero = (): number[] => new Array<number>(nev).fill(0);
  const self = new Map<number, number[]>();
  const arcs = new Map<number, Map<number, Arc>>();
  const addArc = (from: number, to: number, ev: number, n: number): void => {
    let out = arcs.get(from);
    if (!out) arcs.set(from, (out = new Map()));
    let a = out.get(to);
    if (!a) out.set(to, (a = { cost: zero(), calls: 0 }));
    a.cost[ev] += n;
    a.calls += n;
    if (!self.has(to)) self.set(to, zero());
  };
  const summary = zero();
  for (const p of result.profiles) {
    for (const s of stacksOf(p)) {
      const f = s.frames;
      addArc(ROOT, f[0], p.index, s.count);
      for (let i = 1; i < f.length; i++) addArc(f[i - 1], f[i], p.index, s.count);
      self.get(f[f.length - 1])![p.index] += s.count;
      summary[p.index] += s.count;
    }
  }

  const events = result.profiles.map((p) => `${p.name}_${p.index}`.replace(/[^A-Za-z0-9]/g, '_'));
  yield 'version: 1\ncreator: pmcstat\npositions: instr line\n';
  yield `events: ${events.join(' ')}\nsummary: ${summary.join(' ')}\n\n`;
  yield 'ob=tspmc\nfl=???\nfn=ROOT\n';
  yield `0 0 ${zero().join(' ')}\n`;
  yield* calls(frames, arcs.get(ROOT), '0 0');

  const ids = [...self.keys()].sort((a, b) => a - b);
  for (const id of ids) {
    const obj = frames.image(id)?.path ?? '[unknown]';
    const pos = `${formatPointer(frames.start(id))} 0`;
    yield `\nob=${obj}\nfl=???\nfn=${frames.name(id)}\n${pos} ${self.get(id)!.join(' ')}\n`;
    yield* calls(frames, arcs.get(id), pos);
  }
}

function* calls(frames: FrameTable, out: Map<number, Arc> | undefined, callerPos: string): Generator<string> {
  if (!out) return;
  for (const [to, arc] of out) {
    const obj = frames.image(to)?.path ?? '[unknown]';
    yield `cob=${obj}\ncfl=???\ncfn=${frames.name(to)}\ncalls=${arc.calls} ${formatPointer(frames.start(to))} 0\n${callerPos} ${arc.cost.join(' ')}\n`;
  }
}
