// V8 settings for pmcstat's collector, set before the rest of pmcstat loads.
// (1) The memory reducer: some seconds after start-up, a process whose heap
// grew (loading its modules) and that then allocates little is given full
// mark-compact collections to shrink it again: two or three of them about
// 8 s into every sampling run, tens of ms of CPU in a collector that spends
// a few hundred in all. pmcstat's heap is a few MB and stays so: the reducer
// is off for small heaps (V8 reads this flag when the old generation grows,
// so setting it at run time takes effect).
// (2) Inlining: the collector's hot path is a few small functions run for
// seconds; TurboFan compiling them with everything inlined (and again after
// each deoptimization) costs more CPU than inlining saves over a run's
// samples. An analysis (-R, or the one after a run) is the other way round:
// tuneForAnalysis() turns inlining back on before its code gets hot.
// (docs/PERFORMANCE.md, "Collector", has the figures.)
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-memory-reducer-for-small-heaps');
setFlagsFromString('--no-turbo-inlining');

let analysis = false;

/** Functions optimized from now on inline again (the analysis' hot loops gain from it). */
export function tuneForAnalysis(): void {
  setFlagsFromString('--turbo-inlining');
  analysis = true;
}

/** Whether tuneForAnalysis() ran (V8's flags are no longer the collector's: see code-cache.ts). */
export function tunedForAnalysis(): boolean {
  return analysis;
}
