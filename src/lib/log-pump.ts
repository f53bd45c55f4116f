// A Node stream as the log's file descriptor. The module writes logs only
// into file descriptors (its own, or, through pmcd, one passed to it), so a
// stream sink becomes a pipe: the module writes its write end, and the pump
// copies the read end into the stream.
import { closeSync } from 'node:fs';
import { Socket } from 'node:net';
import type { Writable } from 'node:stream';
import { pipe } from '../ipc/unix.js';

export class LogPump {
  /** The pipe's write end: the log's descriptor. */
  readonly fd: number;
  private delivered = 0;
  private waiters: { bytes: number; resolve: () => void }[] = [];
  private readonly done: Promise<void>;
  private writeEndOpen = true;

  constructor(target: Writable) {
    const [readEnd, writeEnd] = pipe();
    this.fd = writeEnd;
    const reader = new Socket({ fd: readEnd, readable: true, writable: false });
    let inFlight = 0;
    let readerEnded = false;
    let finish: () => void;
    this.done = new Promise((resolve) => (finish = resolve));
    const settle = (): void => {
      // A pipe that ended delivers nothing more: nobody waits for it.
      const ready = (x: { bytes: number }): boolean => x.bytes <= this.delivered || readerEnded;
      for (const w of this.waiters.filter(ready)) w.resolve();
      this.waiters = this.waiters.filter((x) => !ready(x));
      if (readerEnded && inFlight === 0) finish();
    };
    reader.on('data', (chunk: Buffer) => {
      inFlight++;
      const more = target.write(chunk, () => {
        inFlight--;
        this.delivered += chunk.length;
        settle();
      });
      if (!more) {
        reader.pause();
        target.once('drain', () => reader.resume());
      }
    });
    reader.on('close', () => {
      readerEnded = true;
      settle();
    });
    target.once('error', () => reader.destroy());
  }

  /** Resolves when the stream has taken `bytes` bytes in all (FLUSHLOG's count). */
  deliveredUpTo(bytes: number): Promise<void> {
    if (bytes <= this.delivered) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ bytes, resolve }));
  }

  /** The log is closed: close the write end and wait until everything reached the stream. */
  finish(): Promise<void> {
    if (this.writeEndOpen) {
      this.writeEndOpen = false;
      closeSync(this.fd);
    }
    return this.done;
  }
}
