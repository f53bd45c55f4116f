// Converts a perf.data file (perf record -g) into a pmclog, so that pmcstat -R
// and perf report analyze the same samples: the analysis benchmark records
// once with perf and gives both tools the one recording.
//
// What becomes what (as tspmc's collector writes them from the same kernel
// records, see module/sample-processor.ts): SAMPLE -> CALLCHAIN (context
// markers dropped, user mode from the sample's CPU mode), COMM with exec and the
// next executable MMAP2 -> PROCEXEC + MAP_IN, MMAP/MMAP2 of executable code
// -> MAP_IN (start = addr - pgoff, extent = pgoff and len; the kernel's and its
// modules' with pid -1, at addr, without extent),
// FORK -> PROCFORK or THR_CREATE, EXIT of a thread -> THR_EXIT, LOST and
// LOST_SAMPLES -> DROPNOTIFY. Records are written in time order (perf.data
// holds the per-CPU rings' rounds), then CLOSELOG.
//
//   node dist/bench/perf-to-pmclog.js perf.data out.pmclog
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LogType, PMC_CC_F_USERSPACE } from '../src/log/records.js';
import { decodeSideRecord, PERF_HEADER_SIZE, PerfRecordMisc, PerfRecordType, u64Number } from '../src/md/perf-records.js';
import { copyChainWords, decodeSample, SampleFields, SampleLayout } from '../src/md/perf-sample-record.js';
import { PMC_CALLCHAIN_DEPTH_MAX } from '../src/pmc-common.js';
import { LogFileWriter } from './log-file-writer.js';

const MAGIC = 'PERFILE2';
const PROT_EXEC = 4;
const FLAG_FREQ = 1n << 10n;
const FLAG_SAMPLE_ID_ALL = 1n << 18n;
const PMCID = 0x100;
const SOFTWARE_EVENTS = ['cpu-clock', 'task-clock', 'page-faults', 'context-switches', 'cpu-migrations', 'minor-faults', 'major-faults'];

interface Attr {
  name: string;
  layout: SampleLayout;
  rate: bigint;
}

function readAttrs(view: DataView): { attrs: Attr[]; byId: Map<number, number> } {
  const attrSize = u64Number(view, 16);
  const at = u64Number(view, 24);
  const size = u64Number(view, 32);
  const attrs: Attr[] = [];
  const byId = new Map<number, number>();
  for (let o = at; o < at + size; o += attrSize) {
    const type = view.getUint32(o, true);
    const config = u64Number(view, o + 8);
    const flags = view.getBigUint64(o + 40, true);
    const sampleType = view.getBigUint64(o + 24, true);
    const name = type === 1 && config < SOFTWARE_EVENTS.length ? SOFTWARE_EVENTS[config] : `perf-${type}-0x${config.toString(16)}`;
    const layout = new SampleLayout(sampleType, view.getBigUint64(o + 32, true), (flags & FLAG_SAMPLE_ID_ALL) !== 0n);
    attrs.push({ name, layout, rate: (flags & FLAG_FREQ) !== 0n ? 0n : view.getBigUint64(o + 16, true) });
    const idsAt = u64Number(view, o + attrSize - 16);
    const idsSize = u64Number(view, o + attrSize - 8);
    for (let i = idsAt; i < idsAt + idsSize; i += 8) byId.set(u64Number(view, i), attrs.length - 1);
  }
  return { attrs, byId };
}

export function convertPerfData(input: string, output: string): { samples: number; records: number } {
  const read = readFileSync(input);
  // Seen as int32 words too (call chains): records are 8-byte aligned in the file, so the file must be 4-byte aligned.
  const file = read.byteOffset % 4 === 0 ? read : Buffer.alloc(read.length);
  if (file !== read) file.set(read);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const words = new Int32Array(file.buffer, file.byteOffset, file.byteLength >>> 2);
  const chain = new Int32Array(2 * PMC_CALLCHAIN_DEPTH_MAX);
  if (file.toString('latin1', 0, 8) !== MAGIC) throw new Error(`${input}: not a perf.data file (no ${MAGIC} magic)`);
  const { attrs, byId } = readAttrs(view);
  if (attrs.length === 0) throw new Error(`${input}: no events`);
  const dataAt = u64Number(view, 40);
  const dataEnd = dataAt + u64Number(view, 48);
  // Which attr wrote a record: by its id when the file has several events.
  const attrOf = (o: number, type: number, size: number): Attr => {
    if (attrs.length === 1) return attrs[0];
    const l = attrs[0].layout;
    const idAt = type === PerfRecordType.SAMPLE ? (l.identifier >= 0 ? l.identifier : l.id) : size - 8;
    return attrs[byId.get(u64Number(view, o + idAt)) ?? 0];
  };
  const fields = new SampleFields();

  // Pass 1: where each record is and its time; then the order to write them in.
  const offsets: number[] = [];
  const times: number[] = [];
  for (let o = dataAt; o + PERF_HEADER_SIZE <= dataEnd; ) {
    const type = view.getUint32(o, true);
    const size = view.getUint16(o + 6, true);
    if (size < PERF_HEADER_SIZE) throw new Error(`${input}: record of size ${size} at ${o}`);
    let ts = -1;
    if (type === PerfRecordType.SAMPLE) {
      const a = attrOf(o, type, size);
      decodeSample(a.layout, view, o, fields);
      ts = fields.time;
    } else if (type === PerfRecordType.FORK || type === PerfRecordType.EXIT) {
      ts = u64Number(view, o + PERF_HEADER_SIZE + 16);
    } else if (type === PerfRecordType.MMAP || type === PerfRecordType.MMAP2 || type === PerfRecordType.COMM || type === PerfRecordType.LOST || type === PerfRecordType.LOST_SAMPLES) {
      const id = attrOf(o, type, size).layout.sampleId;
      ts = id.time >= 0 ? u64Number(view, o + size - id.size + id.time) : 0;
    }
    if (ts >= 0) {
      offsets.push(o);
      times.push(ts);
    }
    o += size;
  }
  const order = Uint32Array.from(offsets.keys()).sort((a, b) => times[a] - times[b] || a - b);

  // Pass 2: the log.
  const log = new LogFileWriter(output);
  log.add({ type: LogType.INITIALIZE, ts: 0, version: 0x0a000000, cpuType: 0, tscFreq: 1e9, wallSec: 0, wallNsec: 0, cpuid: `converted from ${basename(input)}` });
  const pmcids = new Map<Attr, number>();
  attrs.forEach((a, i) => {
    pmcids.set(a, PMCID + i);
    log.add({ type: LogType.PMCALLOCATEDYN, ts: 0, pmcid: PMCID + i, event: 0, flags: 0, rate: a.rate, eventName: a.name });
  });
  const execPending = new Set<number>();
  let samples = 0;
  let lastTs = 0;
  for (const k of order) {
    const o = offsets[k];
    const ts = times[k];
    lastTs = Math.max(lastTs, ts);
    const type = view.getUint32(o, true);
    const misc = view.getUint16(o + 4, true);
    const size = view.getUint16(o + 6, true);
    const attr = attrOf(o, type, size);
    if (type === PerfRecordType.SAMPLE) {
      decodeSample(attr.layout, view, o, fields);
      // Every frame, as perf record -g keeps them (a kernel sample's user frames too).
      const n = copyChainWords(words, fields.callchainOffset >>> 2, fields.callchainLength, chain, 0, PMC_CALLCHAIN_DEPTH_MAX, false);
      if (n === 0) continue;
      const mode = misc & PerfRecordMisc.CPUMODE_MASK;
      const user = mode === PerfRecordMisc.USER || mode === PerfRecordMisc.GUEST_USER;
      const pcs = new BigUint64Array(chain.buffer, 0, n).slice();
      log.add({ type: LogType.CALLCHAIN, ts, pid: fields.pid, tid: fields.tid, pmcid: pmcids.get(attr)!, cpu: fields.cpu, flags: user ? PMC_CC_F_USERSPACE : 0, pcs });
      samples++;
      continue;
    }
    const rec = decodeSideRecord(attr.layout, file, view, o, type, misc, size);
    if (!rec) continue;
    switch (rec.type) {
      case PerfRecordType.COMM:
        if (rec.exec) execPending.add(rec.pid);
        break;
      case PerfRecordType.MMAP:
      case PerfRecordType.MMAP2: {
        if (rec.type === PerfRecordType.MMAP2 ? (rec.prot & PROT_EXEC) === 0 : (misc & PerfRecordMisc.MMAP_DATA) !== 0) break;
        const start = rec.addr - rec.pgoff;
        if (rec.pid === -1) {
          // The kernel (perf names its text [kernel.kallsyms]_text, at _text) and its modules.
          const kernel = rec.filename.startsWith('[kernel.kallsyms]');
          const name = kernel ? '[kernel.kallsyms]' : `[${basename(rec.filename).replace(/\.ko(\.[a-z]+)?$/, '')}]`;
          log.add({ type: LogType.MAP_IN, ts, pid: -1, start: rec.addr, pathname: name });
          break;
        }
        const path = rec.filename;
        if (!path.startsWith('/') && path !== '[vdso]') break;
        if (path.startsWith('/') && execPending.delete(rec.pid)) {
          log.add({ type: LogType.PROCEXEC, ts, pid: rec.pid, pmcid: PMCID, base: 0n, dyn: start, pathname: path });
        }
        log.add({ type: LogType.MAP_IN, ts, pid: rec.pid, start, pathname: path, extent: { offset: rec.pgoff, length: rec.len } });
        break;
      }
      case PerfRecordType.FORK:
        if (rec.pid === rec.tid) log.add({ type: LogType.PROCFORK, ts, oldpid: rec.ppid, newpid: rec.pid });
        else log.add({ type: LogType.THR_CREATE, ts, tid: rec.tid, pid: rec.pid, flags: 0, tdname: '' });
        break;
      case PerfRecordType.EXIT:
        if (rec.pid !== rec.tid) log.add({ type: LogType.THR_EXIT, ts, tid: rec.tid });
        break;
      case PerfRecordType.LOST:
      case PerfRecordType.LOST_SAMPLES:
        log.add({ type: LogType.DROPNOTIFY, ts, dropped: 0, lost: rec.lost });
        break;
    }
  }
  log.add({ type: LogType.CLOSELOG, ts: lastTs });
  log.close();
  return { samples, records: log.records };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) {
    process.stderr.write('usage: perf-to-pmclog.js perf.data out.pmclog\n');
    process.exit(2);
  }
  const r = convertPerfData(input, output);
  process.stdout.write(`${r.samples} samples, ${r.records} records\n`);
}
