// The counting tests' workload (test/fixtures/count-workload.c) as a child
// that says "ready", works when told "go" and exits when its stdin closes.
// It is built once per test file, in a temporary directory that also holds
// that file's PMCADMIN state; children still running at the end are killed.
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { buildC, tempDir } from './cli-fixture.js';
import { killAll, Lines, track } from './proc-fixture.js';

let binary = '';

/** Builds the workload before this file's tests; after them, kills what is left and removes the directory. */
export function useCountWorkload(prefix: string): void {
  let dir = '';
  before(() => {
    dir = tempDir(prefix);
    // PMCADMIN states persisted on this machine by other runs must not disable rows these tests use.
    process.env.TSPMC_ADMIN_STATE = path.join(dir, 'admin.json');
    binary = buildC(dir, 'count-workload.c', 'count-workload', ['-pthread']);
  });
  after(() => {
    killAll();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
}

/** The workload, started and waiting for go(). */
export class CountWorkload {
  readonly exited: Promise<unknown>;
  private readonly lines: Lines;

  private constructor(readonly child: ChildProcess) {
    this.exited = once(child, 'exit');
    this.lines = new Lines(child.stdout!);
  }

  /** Starts `count-workload ARGS`; every mode but zombie says "ready" first. */
  static async start(...args: string[]): Promise<CountWorkload> {
    const w = new CountWorkload(track(spawn(binary, args, { stdio: ['pipe', 'pipe', 'inherit'] })));
    if (args[0] !== 'zombie') assert.equal(await w.nextLine(), 'ready');
    return w;
  }

  get pid(): number {
    return this.child.pid!;
  }

  async nextLine(): Promise<string> {
    const line = await this.lines.next();
    if (line === undefined) throw new Error('the workload ended its output');
    return line;
  }

  /** Lets the work run; resolves with the words after "done". */
  async go(): Promise<string[]> {
    this.child.stdin!.write('go\n');
    const line = await this.nextLine();
    const [word, ...rest] = line.split(' ');
    assert.equal(word, 'done', `workload said "${line}"`);
    return rest;
  }

  /** Closes stdin: the workload exits. */
  async finish(): Promise<void> {
    this.child.stdin!.end();
    await this.exited;
  }
}
