// V8's memory reducer: some seconds after start-up, a process whose heap
// grew (loading its modules) and that then allocates little is given full
// mark-compact collections to shrink the heap again: in a sampling run,
// two or three of them about 8 s in, tens of ms of CPU in a collector that
// spends a few hundred in all (docs/PERFORMANCE.md, "Collector"). pmcstat's
// heap is a few MB and stays so: the reducer is switched off for small heaps
// before the rest of pmcstat loads. V8 reads this flag when the old
// generation grows, so setting it at run time takes effect.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--no-memory-reducer-for-small-heaps');
