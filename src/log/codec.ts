// Encoding and decoding of owner-log records, from their one declaration
// (record-layouts.ts): offsets, sizes, the validity rules, encodeRecord,
// decodeRecord and the word offsets of the writers' fast paths.
//
// The table is compiled once, at load, into one encoder and one decoder
// function per type (straight-line code, as if written by hand): a loop that
// interprets the table per record would make every decoded record's shape
// megamorphic and cost the analysis several times the decoding time.
import { PMC_CALLCHAIN_DEPTH_MAX } from '../pmc-common.js';
import { PmcError } from '../pmc-error.js';
import { type Field, type FieldName, LAYOUTS, type Layout, LOG_HEADER_SIZE, MAX_RECORD_LENGTH, type Tail } from './record-layouts.js';
import { LogType, PMCLOG_HEADER_MAGIC, type LogRecord } from './records.js';

// ---------------------------------------------------------------------------
// What the declarations give: offsets and sizes

type AnyField = Field<string>;
const fieldSize = (f: AnyField): number => (f.kind === 'chars' ? f.size : f.kind === 'u64' || f.kind === 'u64n' || f.kind === 'i64n' ? 8 : 4);

/** Offsets of `fields` laid end to end from `start`. */
function offsets(fields: readonly AnyField[], start: number): { at: number[]; end: number } {
  const at: number[] = [];
  let o = start;
  for (const f of fields) {
    at.push(o);
    o += fieldSize(f);
  }
  return { at, end: o };
}

interface Compiled {
  name: string;
  /** Bytes up to the tail (fixed records: the whole record). */
  fixed: number;
  /** The full length with the extension, 0 without one. */
  extended: number;
  extensionName?: string;
  tail?: Tail<string>;
  /** The optional trailer after a string tail: its name and size in bytes. */
  trailer?: { name: string; size: number };
  /** Records with a tail: the minimum length, fixed + one tail unit (a NUL, a pc) rounded up to 4. */
  min: number;
  /** Records without a tail: the lengths a reader accepts, and how an error says so. */
  lengths: readonly number[];
  expected: string;
  /** Byte offset of each named field (cpuflags as `cpuflags`). */
  byName: Map<string, number>;
  readonly encode: (rec: LogRecord, target: Uint8Array, dv: DataView, o: number, len: number, h: typeof helpers) => void;
  readonly decode: (src: Uint8Array, dv: DataView, o: number, len: number, streamOffset: number, ts: number, h: typeof helpers) => LogRecord;
}

const roundUp4 = (n: number): number => (n + 3) & ~3;
const TWO32 = 4294967296;

// ---------------------------------------------------------------------------
// Compilation: each field kind's code, reading `rec.NAME` or producing its value

function putField(f: AnyField, o: string, value: string): string {
  switch (f.kind) {
    case 'u32':
    case 'i32':
      return `dv.setUint32(${o}, ${value}, true);`;
    case 'u64':
      return `dv.setBigUint64(${o}, ${value}, true);`;
    case 'u64n':
      return `h.setU64Number(dv, ${o}, ${value});`;
    case 'i64n':
      return `h.setI64Number(dv, ${o}, ${value});`;
    case 'chars':
      return `h.putCharArray(target, ${o}, ${f.size}, ${value}, ${JSON.stringify(f.label)});`;
    case 'cpuflags':
      return `dv.setUint32(${o}, h.cpuFlags(rec.cpu, rec.flags), true);`;
    case 'pad':
      return `dv.setUint32(${o}, 0, true);`;
    case 'present':
      return `dv.setUint32(${o}, ${value} !== undefined ? 1 : 0, true);`;
  }
}

function getField(f: AnyField, o: string, type: string): string {
  switch (f.kind) {
    case 'u32':
      return `dv.getUint32(${o}, true)`;
    case 'i32':
      return `dv.getInt32(${o}, true)`;
    case 'u64':
      return `dv.getBigUint64(${o}, true)`;
    case 'u64n':
      return `h.getU64Number(dv, ${o})`;
    case 'i64n':
      return `h.getI64Number(dv, ${o})`;
    case 'chars':
      return `h.getString(src, ${o}, ${o} + ${f.size}, streamOffset, ${JSON.stringify(`${type} ${f.label}`)})`;
    case 'cpuflags':
    case 'pad':
    case 'present':
      throw new Error('not a value');
  }
}

/**
 * `name: value` entries of a decoded record's fields, at offsets `at` from
 * `base` (an expression); pads give nothing, cpuflags gives cpu and flags.
 */
function decodedEntries(fields: readonly AnyField[], at: number[], type: string, present?: (end: number) => string, base = 'o'): string[] {
  const out: string[] = [];
  fields.forEach((f, i) => {
    const o = `${base} + ${at[i]}`;
    if (f.kind === 'pad' || f.kind === 'present') return;
    if (f.kind === 'cpuflags') {
      out.push(`cpu: dv.getUint32(${o}, true) >>> 16`, `flags: dv.getUint32(${o}, true) & 0xffff`);
      return;
    }
    const get = getField(f, o, type);
    out.push(`${f.name}: ${present ? `${present(at[i] + fieldSize(f))} ? ${get} : 0` : get}`);
  });
  return out;
}

function compile(type: LogType, layout: Layout<LogType>): Compiled {
  const name = LogType[type];
  const fields = layout.fields as readonly AnyField[];
  const { at, end: fixed } = offsets(fields, LOG_HEADER_SIZE);
  const byName = new Map<string, number>();
  fields.forEach((f, i) => byName.set(f.kind === 'cpuflags' ? 'cpuflags' : 'name' in f ? f.name : `pad${i}`, at[i]));
  const enc: string[] = fields.map((f, i) => putField(f, `o + ${at[i]}`, 'name' in f ? `rec.${f.name}` : ''));
  const shortForms = layout.shortForms ?? [];
  // A field of a record that has shorter forms may be missing: it then reads as 0.
  let entries = decodedEntries(fields, at, name, shortForms.length > 0 ? (e) => `len >= ${e}` : undefined);
  let extended = 0;
  let decodeExtension = '';
  const ext = layout.extension;
  if (ext) {
    const x = offsets(ext.fields as readonly AnyField[], fixed);
    extended = x.end;
    const names = (ext.fields as readonly AnyField[]).map((f) => ('name' in f ? f.name : ''));
    enc.push(`if (len >= ${extended}) { const x = rec.${ext.name}; ${ext.fields.map((f, i) => putField(f, `o + ${x.at[i]}`, `x.${names[i]}`)).join(' ')} }`);
    decodeExtension = `if (len >= ${extended}) r.${ext.name} = { ${decodedEntries(ext.fields as readonly AnyField[], x.at, name).join(', ')} };`;
  }
  const tail = layout.tail as Tail<string> | undefined;
  const unit = tail?.kind === 'pcs' ? 8 : 1;
  const min = tail ? roundUp4(fixed + unit) : fixed;
  // The trailer takes the record's last bytes (`tl` of them, 0 when absent); the string ends before it.
  let trailer: Compiled['trailer'];
  let decodePrelude = '';
  if (layout.trailer && tail?.kind === 'string') {
    const tr = layout.trailer as { name: string; fields: readonly AnyField[] };
    const flag = fields.findIndex((f) => f.kind === 'present');
    const x = offsets(tr.fields, 0);
    trailer = { name: tr.name, size: x.end };
    const names = tr.fields.map((f) => ('name' in f ? f.name : ''));
    enc.push(`const tl = rec.${tr.name} !== undefined ? ${x.end} : 0;`);
    enc.push(`if (tl) { const x = rec.${tr.name}; ${tr.fields.map((f, i) => putField(f, `o + len - ${x.end - x.at[i]}`, `x.${names[i]}`)).join(' ')} }`);
    decodePrelude =
      `const tl = dv.getUint32(o + ${at[flag]}, true) & 1 ? ${x.end} : 0; ` +
      `if (len < ${min} + tl) throw h.formatError(streamOffset, '${name} length ' + len + ' is below its minimum ${min + x.end} with its ${tr.name}');`;
    decodeExtension = `if (tl) r.${tr.name} = { ${decodedEntries(tr.fields, x.at, name, undefined, `o + len - ${x.end}`).join(', ')} };`;
  }
  const end = trailer ? 'o + len - tl' : 'o + len';
  if (tail?.kind === 'string') {
    enc.push(`h.putString(target, o + ${fixed}, ${end}, rec.${tail.name});`);
    entries.push(`${tail.name}: h.getString(src, o + ${fixed}, ${end}, streamOffset, ${JSON.stringify(`${name} ${tail.label}`)})`);
  } else if (tail?.kind === 'pcs') {
    enc.push(`target.set(new Uint8Array(rec.${tail.name}.buffer, rec.${tail.name}.byteOffset, rec.${tail.name}.byteLength), o + ${fixed});`);
    entries.push(`${tail.name}: h.copyPcs(src, o + ${fixed}, o + len)`);
  }
  entries = [`type: ${type}`, 'ts', ...entries];
  // Made on first use: a process uses a few of the types, and each costs a compilation.
  let encode: Compiled['encode'] | undefined;
  let decode: Compiled['decode'] | undefined;
  return {
    name,
    fixed,
    extended,
    extensionName: ext?.name,
    tail,
    trailer,
    min,
    lengths: [...shortForms, fixed, ...(ext ? [extended] : [])],
    expected: [...shortForms, fixed].join(' or ') + (ext ? `, or ${extended} with its ${ext.name} counts` : ''),
    byName,
    get encode() {
      return (encode ??= new Function(`return function encode${name}(rec, target, dv, o, len, h) { ${enc.join(' ')} };`)() as Compiled['encode']);
    },
    get decode() {
      return (decode ??= new Function(
        `return function decode${name}(src, dv, o, len, streamOffset, ts, h) { ${decodePrelude} const r = { ${entries.join(', ')} }; ${decodeExtension} return r; };`,
      )() as Compiled['decode']);
    },
  };
}

/** Compiled layouts indexed by type number; undefined = not a record type. */
const compiled: (Compiled | undefined)[] = [];
for (const [t, layout] of Object.entries(LAYOUTS)) compiled[Number(t)] = compile(Number(t) as LogType, layout as Layout<LogType>);

function layoutOf(type: LogType): Compiled {
  return compiled[type]!;
}

type VariableName = 'PMCATTACH' | 'PROCEXEC' | 'MAP_IN' | 'CALLCHAIN';
type FixedName = Exclude<keyof typeof LogType, VariableName>;

/** Sizes of the fixed-size records, header included (DROPNOTIFY: tspmc's usual form, and the others it reads). */
export const RecordSize = Object.freeze({
  ...(Object.fromEntries(compiled.flatMap((c) => (c && !c.tail ? [[c.name, c.fixed]] : []))) as Record<FixedName, number>),
  DROPNOTIFY_BARE: LOG_HEADER_SIZE,
  DROPNOTIFY_SIDEBAND: layoutOf(LogType.DROPNOTIFY).extended,
});

/** Where the variable-length tail (pathname or pcs) of the other records starts. */
export const TailOffset = Object.freeze(
  Object.fromEntries(compiled.flatMap((c) => (c?.tail ? [[c.name, c.fixed]] : []))) as Record<VariableName, number>,
);

/**
 * The 32-bit word (byte offset / 4) where field `name` of a `type` record
 * starts, for code that writes records as words (CALLCHAIN's `cpuflags` is
 * its packed pl_cpuflags word). Records are 4-byte aligned, so every field is.
 */
export function fieldWord<T extends LogType>(type: T, name: FieldName<T> | 'cpuflags'): number {
  const at = layoutOf(type).byName.get(name);
  if (at === undefined) throw new Error(`${LogType[type]} has no field ${name}`);
  return at >>> 2;
}

/** A log that cannot be read: names the byte offset of the damaged record and what is wrong. */
export class LogFormatError extends PmcError {
  /** Byte offset (from the start of the log) of the record or header that is damaged. */
  readonly offset: number;

  constructor(offset: number, what: string) {
    super('EINVAL', `log byte offset ${offset} (0x${offset.toString(16)}): ${what}`);
    this.name = 'LogFormatError';
    this.offset = offset;
  }
}

export function headerWord(type: LogType, length: number): number {
  return ((PMCLOG_HEADER_MAGIC << 24) | (type << 16) | length) >>> 0;
}

export function typeName(type: number): string {
  return LogType[type] ?? `type ${type}`;
}

/** Length in bytes of a CALLCHAIN record with `npcs` pcs. */
export function callchainLength(npcs: number): number {
  return TailOffset.CALLCHAIN + 8 * npcs;
}

/**
 * Checks a header word (magic, known type, length rules) and returns the
 * record length; `offset` is where the record starts in the log, for the error.
 */
export function checkHeader(word: number, offset: number): number {
  const magic = word >>> 24;
  const type = (word >>> 16) & 0xff;
  const length = word & 0xffff;
  if (magic !== PMCLOG_HEADER_MAGIC) {
    throw new LogFormatError(offset, `bad magic 0x${magic.toString(16)} in header word 0x${word.toString(16)} (expected 0xee)`);
  }
  const c = compiled[type];
  if (c === undefined) throw new LogFormatError(offset, `unknown record type ${type}`);
  if (length % 4 !== 0) throw new LogFormatError(offset, `${c.name} length ${length} is not a multiple of 4`);
  if (!c.tail) {
    if (!c.lengths.includes(length)) throw new LogFormatError(offset, `${c.name} length ${length} (expected ${c.expected})`);
  } else if (length < c.min) {
    throw new LogFormatError(offset, `${c.name} length ${length} is below its minimum ${c.min}`);
  }
  if (c.tail?.kind === 'pcs') {
    const tail = length - c.fixed;
    if (tail % 8 !== 0) throw new LogFormatError(offset, `${c.name} length ${length}: (length - ${c.fixed}) is not a multiple of 8`);
    if (tail / 8 > PMC_CALLCHAIN_DEPTH_MAX) {
      throw new LogFormatError(offset, `${c.name} of ${tail / 8} pcs exceeds the maximum depth ${PMC_CALLCHAIN_DEPTH_MAX}`);
    }
  }
  return length;
}

// ---------------------------------------------------------------------------
// Views: one DataView and one Buffer per source or target array, cached so
// that decoding a run of records from the same chunk allocates no views.

let viewedArray: Uint8Array | null = null;
let viewDv: DataView = new DataView(new ArrayBuffer(0));
let viewBuf: Buffer = Buffer.alloc(0);
function view(a: Uint8Array): DataView {
  if (a !== viewedArray) {
    viewedArray = a;
    viewDv = new DataView(a.buffer, a.byteOffset, a.byteLength);
    viewBuf = Buffer.isBuffer(a) ? a : Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  }
  return viewDv;
}

// ---------------------------------------------------------------------------
// What the compiled encoders and decoders call

const encoder = new TextEncoder();

function checkString(s: string, what: string): void {
  if (s.includes('\0')) throw new PmcError('EINVAL', `${what} ${JSON.stringify(s)} contains a NUL character`);
}

/** Writes the NUL-terminated string and zero padding up to `end`. */
function putString(target: Uint8Array, start: number, end: number, s: string): void {
  const { written } = encoder.encodeInto(s, target.subarray(start, end - 1));
  target.fill(0, start + written, end);
}

/**
 * Decoded pcs are copied, not viewed in place: the source chunk is dropped
 * after decoding, and in-place u64 views would need an 8-byte alignment the
 * log does not promise. Each copy is a view into a shared slab, because an
 * ArrayBuffer per record costs more than the rest of decoding together.
 */
const PCS_SLAB_SIZE = 256 * 1024;
let pcsSlab = new Uint8Array(PCS_SLAB_SIZE);
let pcsSlabUsed = 0;

const helpers = {
  getU64Number(dv: DataView, o: number): number {
    return dv.getUint32(o, true) + dv.getUint32(o + 4, true) * TWO32;
  },
  getI64Number(dv: DataView, o: number): number {
    return dv.getUint32(o, true) + dv.getInt32(o + 4, true) * TWO32;
  },
  setU64Number(dv: DataView, o: number, v: number): void {
    dv.setUint32(o, v >>> 0, true);
    dv.setUint32(o + 4, Math.floor(v / TWO32), true);
  },
  setI64Number(dv: DataView, o: number, v: number): void {
    const hi = Math.floor(v / TWO32);
    dv.setUint32(o, v - hi * TWO32, true);
    dv.setInt32(o + 4, hi, true);
  },
  putString,
  /**
   * Writes a fixed char array of `size` bytes: like the kernel's strlcpy, a
   * longer string is cut (at a character boundary) to leave room for the NUL.
   */
  putCharArray(target: Uint8Array, start: number, size: number, s: string, what: string): void {
    checkString(s, what);
    putString(target, start, start + size, s);
  },
  cpuFlags,
  formatError: (offset: number, what: string): LogFormatError => new LogFormatError(offset, what),
  /** The NUL-terminated string in [start, end) of `src`; `streamOffset` names the record in errors. */
  getString(src: Uint8Array, start: number, end: number, streamOffset: number, what: string): string {
    const nul = src.indexOf(0, start);
    if (nul < 0 || nul >= end) {
      throw new LogFormatError(streamOffset, `${what} is not NUL-terminated within its ${end - start} bytes`);
    }
    view(src);
    return viewBuf.toString('utf8', start, nul);
  },
  copyPcs(src: Uint8Array, start: number, end: number): BigUint64Array {
    const nbytes = end - start;
    if (pcsSlabUsed + nbytes > PCS_SLAB_SIZE) {
      pcsSlab = new Uint8Array(PCS_SLAB_SIZE);
      pcsSlabUsed = 0;
    }
    const at = pcsSlabUsed;
    // A byte loop: set() would need a subarray view of `src` per record.
    const slab = pcsSlab;
    for (let i = 0; i < nbytes; i++) slab[at + i] = src[start + i];
    pcsSlabUsed = at + nbytes;
    return new BigUint64Array(pcsSlab.buffer, at, nbytes / 8);
  },
};

/** pl_cpuflags: CPU in the high 16 bits, PMC_CC_F_* in the low 16. */
export function cpuFlags(cpu: number, flags: number): number {
  return (((cpu & 0xffff) << 16) | (flags & 0xffff)) >>> 0;
}

export function checkDepth(npcs: number): void {
  if (!Number.isInteger(npcs) || npcs < 1 || npcs > PMC_CALLCHAIN_DEPTH_MAX) {
    throw new PmcError('EINVAL', `call chain of ${npcs} pcs (expected 1 to ${PMC_CALLCHAIN_DEPTH_MAX})`);
  }
}

// ---------------------------------------------------------------------------
// Encoding

/** Encoded length in bytes of `rec`, header included; throws PmcError on a record that cannot be encoded. */
export function encodedLength(rec: LogRecord): number {
  const c = compiled[rec.type];
  if (c === undefined) throw new PmcError('EINVAL', `cannot encode unknown log record type ${(rec as { type: unknown }).type}`);
  const tail = c.tail;
  if (tail === undefined) {
    if (c.extensionName === undefined) return c.fixed;
    const x = (rec as unknown as Record<string, Record<string, number> | undefined>)[c.extensionName];
    return x !== undefined && Object.values(x).some((n) => n !== 0) ? c.extended : c.fixed;
  }
  const value = (rec as unknown as Record<string, unknown>)[tail.name];
  if (tail.kind === 'pcs') {
    const n = (value as BigUint64Array).length;
    checkDepth(n);
    return c.fixed + 8 * n;
  }
  const s = value as string;
  checkString(s, tail.label);
  const bytes = Buffer.byteLength(s, 'utf8');
  const trailer = c.trailer && (rec as unknown as Record<string, unknown>)[c.trailer.name] !== undefined ? c.trailer.size : 0;
  const len = roundUp4(c.fixed + bytes + 1) + trailer;
  if (len > MAX_RECORD_LENGTH) {
    throw new PmcError('ENAMETOOLONG', `${c.name} ${tail.label} of ${bytes} bytes does not fit a log record (max ${MAX_RECORD_LENGTH - c.fixed - trailer - 1})`);
  }
  return len;
}

/**
 * Writes the 16-byte header as four int32 words from word `w` (for the fast
 * paths that write records as words). `ts >>> 0` is the low word of an
 * integer below 2^53 without a floating-point modulo (a library call); the
 * int32 store truncates the high word.
 */
export function putHeaderWords(words: Int32Array, w: number, type: LogType, length: number, ts: number): void {
  words[w] = (PMCLOG_HEADER_MAGIC << 24) | (type << 16) | length;
  words[w + 1] = 0;
  words[w + 2] = ts >>> 0;
  words[w + 3] = ts / TWO32;
}

/** Writes the 16-byte header. */
function putHeader(dv: DataView, o: number, type: LogType, length: number, ts: number): void {
  dv.setUint32(o, headerWord(type, length), true);
  dv.setUint32(o + 4, 0, true);
  helpers.setU64Number(dv, o + 8, ts);
}

/**
 * Encodes `rec` into `target` at `offset`; returns the offset just past it.
 * Pads and the bytes after strings are zeroed, so reused buffers leak nothing.
 */
export function encodeRecord(rec: LogRecord, target: Uint8Array, offset: number): number {
  const len = encodedLength(rec);
  if (!Number.isInteger(offset) || offset < 0 || offset + len > target.length) {
    throw new PmcError('EINVAL', `a ${len}-byte ${typeName(rec.type)} record does not fit at offset ${offset} of a ${target.length}-byte buffer`);
  }
  const dv = view(target);
  putHeader(dv, offset, rec.type, len, rec.ts);
  layoutOf(rec.type).encode(rec, target, dv, offset, len, helpers);
  return offset + len;
}

// ---------------------------------------------------------------------------
// Decoding

/**
 * Decodes the record at `offset` of `src`, which must hold all of it.
 * `streamOffset` is the record's offset in the whole log, used in errors.
 * A CALLCHAIN's `pcs` is a view into a shared slab: its `buffer` holds other
 * records' pcs too (mind `byteOffset` and `byteLength`).
 */
export function decodeRecord(src: Uint8Array, offset: number, streamOffset: number = offset): LogRecord {
  if (offset + 4 > src.length) throw new LogFormatError(streamOffset, `truncated header: ${Math.max(0, src.length - offset)} of ${LOG_HEADER_SIZE} bytes`);
  const dv = view(src);
  const word = dv.getUint32(offset, true);
  const len = checkHeader(word, streamOffset);
  const type = (word >>> 16) & 0xff;
  if (offset + len > src.length) {
    throw new LogFormatError(streamOffset, `truncated ${typeName(type)} record: ${src.length - offset} of ${len} bytes`);
  }
  return compiled[type]!.decode(src, dv, offset, len, streamOffset, helpers.getU64Number(dv, offset + 8), helpers);
}
