// The floor of a sampling collector written for Node: the rings pmcstat
// opens for `-P cpu-clock` on a command (md's SamplingSet: an event per
// thread and CPU with call chains, the side-band dummy beside it, 2 MiB
// rings per CPU woken every 1 MiB), polled as pmcstat polls them (poll(2)
// on a libuv thread through koffi), and at each wakeup every ring's new
// bytes written to a file straight from the ring, as perf record does:
// nothing decoded, no module, no log format, no analysis. What it costs is
// what any Node collector pays: Node's start, the FFI, opening the events,
// the wakeups and the writes. bench/sampling.ts runs it beside pmcstat and
// perf record (`--floor`).
//
//   node dist/bench/floor-collector.js -F FREQ|-c PERIOD OUTPUT -- COMMAND [ARGS...]
import '../src/cli/v8-tuning.js';
import { closeSync, openSync, writeSync } from 'node:fs';
import { launchHeld } from '../src/lib/launch.js';
import { PerfType } from '../src/md/perf-attr.js';
import type { RingBuffer } from '../src/md/ring-buffer.js';
import { SamplingSet } from '../src/md/sampling-set.js';
import { whenReadable } from '../src/os/libc.js';

const PERF_COUNT_SW_CPU_CLOCK = 0n;
const TWO_32 = 0x1_0000_0000;

/** The ring's fields the floor reads directly (RingBuffer keeps them private: the module never needs them). */
interface RingInside {
  data: { bytes: Uint8Array };
  control: Uint32Array;
  tail: number;
}

/** Everything the kernel wrote since the last call, from the ring to `fd` (one or two writes), then the ring given back. */
function writeOut(ring: RingBuffer, fd: number): void {
  const inside = ring as unknown as RingInside;
  const c = inside.control;
  const head = Atomics.load(c, 257) * TWO_32 + Atomics.load(c, 256);
  const size = ring.size;
  for (let from = inside.tail; from < head; ) {
    const pos = from % size;
    const n = Math.min(head - from, size - pos);
    from += writeSync(fd, inside.data.bytes, pos, n);
  }
  inside.tail = head;
  Atomics.store(c, 258, head % TWO_32);
  Atomics.store(c, 259, Math.floor(head / TWO_32));
}

async function main(): Promise<void> {
  const [how, rate, output, dashes, ...argv] = process.argv.slice(2);
  if (!(how === '-F' || how === '-c') || !(Number(rate) > 0) || !output || dashes !== '--' || argv.length === 0) throw new Error('usage: floor-collector -F FREQ|-c PERIOD OUTPUT -- COMMAND [ARGS...]');
  const out = openSync(output, 'w');
  const cmd = await launchHeld(argv, 'inherit');
  const request = { event: 0, countUser: true, countKernel: true, sampling: true, reloadCount: BigInt(rate), frequency: how === '-F', callchain: true, callchainDepth: 128, contextSwitchValues: false };
  const set = SamplingSet.forProcess({ type: PerfType.SOFTWARE, config: PERF_COUNT_SW_CPU_CLOCK }, request, cmd.pid, 'threads');
  const rings = set.sampleSources.map((s) => s.ring);
  const fds = rings.map((r) => r.event.fd);
  set.start();
  cmd.resume();
  let running = true;
  void cmd.exited.then(() => (running = false));
  while (running) {
    await whenReadable(fds, 500);
    for (const r of rings) writeOut(r, out);
  }
  set.stop();
  for (const r of rings) writeOut(r, out);
  set.close();
  closeSync(out);
  process.exit(0);
}

await main();
