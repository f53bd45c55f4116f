// pmcstat -a: every sample's call chain, one `PC FUNCTION IMAGE` line per
// frame (`PC <unknown> IMAGE` without a symbol, `PC <unknown> ??` outside any
// image), then `--`. pmcstat prints file:line there; this has no line
// information, so it names the image.
import type { AnalysisResult } from './analyze.js';
import { FrameKind } from './frames.js';
import { keptSamples } from './write-pcs.js';

export function* formatAnnotate(result: AnalysisResult): Generator<string> {
  for (const s of keptSamples(result, '-a (annotate)')) {
    let text = '';
    const frames = result.frames;
    for (let i = 0; i < s.pcs.length; i++) {
      const f = s.frames[i];
      const name = frames.kind(f) === FrameKind.Symbol ? frames.name(f) : '<unknown>';
      text += `0x${s.pcs[i].toString(16)} ${name} ${frames.image(f)?.path ?? '??'}\n`;
    }
    yield text + '--\n';
  }
}
