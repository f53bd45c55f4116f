// Writes a pmclog file record by record through a 1 MiB buffer (the bench
// tools make logs of hundreds of MB without holding them).
import { closeSync, openSync, writeSync } from 'node:fs';
import { encodedLength, encodeRecord } from '../src/log/codec.js';
import type { LogRecord } from '../src/log/records.js';

export class LogFileWriter {
  private readonly fd: number;
  private readonly buf = new Uint8Array(1 << 20);
  private used = 0;
  records = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
  }

  add(r: LogRecord): void {
    const len = encodedLength(r);
    if (this.used + len > this.buf.length) this.flush();
    this.used = encodeRecord(r, this.buf, this.used);
    this.records++;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    for (let o = 0; o < this.used; ) o += writeSync(this.fd, this.buf, o, this.used - o);
    this.used = 0;
  }
}
