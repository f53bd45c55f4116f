// pmcd's frames (docs/protocol.md): an 8-byte header, then a JSON payload.
//   u32 payload length (little-endian) | u8 protocol version | u8 kind | u16 0
// The decoder is incremental and bounded: a frame longer than the receiver
// accepts, another version, an unknown kind or a nonzero reserved field is a
// protocol error, after which the stream cannot be trusted.
import { PmcError } from '../pmc-error.js';

export const PROTOCOL_VERSION = 1;
export const FRAME_HEADER = 8;

export enum FrameKind {
  /** client -> pmcd: { seq, op, args } */
  REQUEST = 1,
  /** pmcd -> client: { seq, result } or { seq, error: { code, message } } */
  REPLY = 2,
  /** pmcd -> client: an owner notice (hwpmc's SIGIO) { signal, reason, pmcId? } */
  NOTICE = 3,
  /** client -> pmcd, alone on a descriptor connection, with one SCM_RIGHTS descriptor: {} */
  PASSFD = 4,
  /** client -> pmcd: { seq }, answered by an empty REPLY without touching the module (the transport's floor) */
  PING = 5,
}

/** JSON has no bigint: one crosses as its decimal string (OP_TABLE's bigint codec reads it back). */
const bigintAsString = (_key: string, v: unknown): unknown => (typeof v === 'bigint' ? v.toString() : v);

export function encodeFrame(kind: FrameKind, payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload, bigintAsString), 'utf8');
  const frame = Buffer.allocUnsafe(FRAME_HEADER + body.length);
  frame.writeUInt32LE(body.length, 0);
  frame[4] = PROTOCOL_VERSION;
  frame[5] = kind;
  frame.writeUInt16LE(0, 6);
  body.copy(frame, FRAME_HEADER);
  return frame;
}

export interface Frame {
  kind: FrameKind;
  /** The payload, parsed; a PmcError (EINVAL) when it is not JSON. */
  payload: unknown;
}

export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  constructor(private readonly maxPayload: number) {}

  /** Adds bytes; returns the whole frames they complete. Throws a PmcError on a protocol error. */
  push(bytes: Buffer): Frame[] {
    this.chunks.push(bytes);
    this.buffered += bytes.length;
    const out: Frame[] = [];
    for (;;) {
      if (this.buffered < FRAME_HEADER) break;
      const head = this.peek(FRAME_HEADER);
      const length = head.readUInt32LE(0);
      if (head[4] !== PROTOCOL_VERSION) throw new PmcError('EPROTO', `frame of protocol version ${head[4]}; this side speaks ${PROTOCOL_VERSION}`);
      if (!(head[5] in FrameKind)) throw new PmcError('EPROTO', `frame of unknown kind ${head[5]}`);
      if (head.readUInt16LE(6) !== 0) throw new PmcError('EPROTO', 'frame header with a nonzero reserved field');
      if (length > this.maxPayload) throw new PmcError('EMSGSIZE', `frame of ${length} bytes; at most ${this.maxPayload} are accepted`);
      if (this.buffered < FRAME_HEADER + length) break;
      const whole = this.take(FRAME_HEADER + length);
      out.push({ kind: head[5] as FrameKind, payload: parsePayload(whole.subarray(FRAME_HEADER)) });
    }
    return out;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0];
  }

  private take(n: number): Buffer {
    const first = this.peek(n);
    const whole = first.subarray(0, n);
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
    return whole;
  }
}

function parsePayload(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (e) {
    return new PmcError('EINVAL', `frame payload is not JSON: ${(e as Error).message}`);
  }
}
