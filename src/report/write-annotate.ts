// pmcstat -a: every sample's call chain, one `PC FUNCTION IMAGE FILE:LINE`
// line per frame (`PC <unknown> IMAGE` without a symbol, `PC <unknown> ??`
// outside any image; FILE:LINE only where the image has a DWARF line for
// the PC), then `--`. A caller's line is the call's: its return address
// less one, as the symbolizer looked it up.
import type { AnalysisResult } from './analyze.js';
import { FrameKind } from './frames.js';
import { lineSource, sourceLines } from './source-lines.js';
import { keptSamples } from './write-pcs.js';

export function* formatAnnotate(result: AnalysisResult): Generator<string> {
  const samples = keptSamples(result, '-a (annotate)');
  const wanted = new Map<string, Set<number>>();
  for (const s of samples) {
    for (let i = 0; i < s.frames.length; i++) {
      const file = lineSource(result.frames.image(s.frames[i]));
      if (file === undefined) continue;
      let set = wanted.get(file);
      if (!set) wanted.set(file, (set = new Set()));
      set.add(s.links[i]);
    }
  }
  const { lines } = sourceLines(wanted);
  for (const s of samples) {
    let text = '';
    const frames = result.frames;
    for (let i = 0; i < s.pcs.length; i++) {
      const f = s.frames[i];
      const name = frames.kind(f) === FrameKind.Symbol ? frames.name(f) : '<unknown>';
      const file = lineSource(frames.image(f));
      const line = file === undefined ? undefined : lines.get(file)?.get(s.links[i]);
      text += `0x${s.pcs[i].toString(16)} ${name} ${frames.image(f)?.path ?? '??'}${line ? ` ${line}` : ''}\n`;
    }
    yield text + '--\n';
  }
}
