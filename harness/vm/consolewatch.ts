// The live side of the console: QEMU's serial output goes to the console log file as it
// arrives, is split into lines and classified (console.ts), and listeners hear about each
// event. Callers mark a point (a line count) and later ask what happened since.
import type { WriteStream } from 'node:fs';
import { ownFileStream } from '../common/paths.js';
import { classifyLine, cleanLine, excerptAround, tailLines, PROBLEM_KINDS, type ConsoleEvent } from './console.js';

export interface TimedEvent extends ConsoleEvent {
  /** Milliseconds since the watch started (QEMU start). */
  atMs: number;
}

const MAX_LINES = 500_000;

export class ConsoleWatch {
  readonly lines: string[] = [];
  readonly events: TimedEvent[] = [];
  private partial = '';
  private readonly listeners = new Set<(e: TimedEvent) => void>();
  private readonly file: WriteStream;
  private readonly t0 = Date.now();
  private dropped = 0;

  constructor(
    readonly path: string,
    private readonly onLine?: (line: string) => void,
  ) {
    this.file = ownFileStream(path);
    this.file.on('error', () => {
      // A full disk must not kill the run; the in-memory copy still works.
    });
  }

  /** Feed raw console bytes. */
  feed(chunk: Buffer | string): void {
    this.file.write(chunk);
    const text = this.partial + (typeof chunk === 'string' ? chunk : chunk.toString('utf8'));
    const parts = text.split('\n');
    this.partial = parts.pop() ?? '';
    for (const p of parts) this.addLine(p);
  }

  /** Flush an unterminated last line (call when QEMU has exited). */
  flush(): void {
    if (this.partial) {
      const p = this.partial;
      this.partial = '';
      this.addLine(p);
    }
  }

  private addLine(raw: string): void {
    const line = raw.replace(/\r$/, '');
    if (this.lines.length >= MAX_LINES) {
      this.dropped++;
      return;
    }
    const idx = this.lines.length;
    this.lines.push(line);
    this.onLine?.(line);
    for (const ev of classifyLine(cleanLine(line), idx)) {
      const te: TimedEvent = { ...ev, atMs: Date.now() - this.t0 };
      this.events.push(te);
      for (const l of this.listeners) l(te);
    }
  }

  /** Listen to events; returns the unsubscribe function. */
  on(listener: (e: TimedEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The first event (already seen or future) matching pred, or undefined after timeoutMs. */
  waitFor(pred: (e: TimedEvent) => boolean, timeoutMs: number): Promise<TimedEvent | undefined> {
    const seen = this.events.find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => {
      const off = this.on((e) => {
        if (pred(e)) {
          off();
          clearTimeout(timer);
          resolve(e);
        }
      });
      const timer = setTimeout(() => {
        off();
        resolve(undefined);
      }, timeoutMs);
      timer.unref();
    });
  }

  /** The current position (number of lines so far), to ask later what happened since. */
  mark(): number {
    return this.lines.length;
  }

  eventsSince(mark: number): TimedEvent[] {
    return this.events.filter((e) => e.line >= mark);
  }

  /** Kernel problems (panic, oops, BUG, warnings, lockdep, init trouble) since a mark. */
  problemsSince(mark: number): TimedEvent[] {
    return this.eventsSince(mark).filter((e) => PROBLEM_KINDS.has(e.kind));
  }

  linesSince(mark: number): string[] {
    return this.lines.slice(mark);
  }

  excerpt(line: number, before?: number, after?: number): string {
    return excerptAround(this.lines, line, before, after);
  }

  tail(n = 30): string {
    const t = tailLines(this.partial ? [...this.lines, this.partial] : this.lines, n);
    return this.dropped ? `${t}\n[${this.dropped} more lines not kept in memory; see ${this.path}]` : t;
  }

  elapsedMs(): number {
    return Date.now() - this.t0;
  }

  close(): Promise<void> {
    this.flush();
    return new Promise((resolve) => this.file.end(() => resolve()));
  }
}
