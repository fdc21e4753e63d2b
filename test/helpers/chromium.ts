// A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
// Chromium reads commands on fd 3 and writes replies and events on fd 4, JSON messages
// ended by NUL), so a test can load a page, run its script and read the DOM back with no
// browser library.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { which } from '../../harness/common/hosttools.js';

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  sessionId?: string;
  result?: Record<string, unknown>;
  error?: { message: string };
}

export const CHROMIUM = 'chromium';

export const chromiumMissing = async () => ((await which(CHROMIUM)) ? undefined : `${CHROMIUM} is not installed (apt-get install -y chromium, or npx ktrial setup)`);

export class HeadlessPage {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (m: Message) => void; reject: (e: Error) => void }>();
  private readonly waiters: { method: string; resolve: (m: Message) => void }[] = [];
  private sessionId = '';

  private constructor(
    private readonly proc: ChildProcess,
    private readonly profile: string,
    private readonly commands: Writable,
    replies: Readable,
  ) {
    let buffered = '';
    replies.setEncoding('utf8');
    replies.on('data', (chunk: string) => {
      buffered += chunk;
      for (let end = buffered.indexOf('\0'); end >= 0; end = buffered.indexOf('\0')) {
        this.dispatch(JSON.parse(buffered.slice(0, end)) as Message);
        buffered = buffered.slice(end + 1);
      }
    });
    proc.on('exit', (code, signal) => {
      for (const p of this.pending.values()) p.reject(new Error(`chromium exited (${signal ?? code}) before replying`));
      this.pending.clear();
    });
  }

  /** Starts Chromium and opens an empty page in it. */
  static async open(): Promise<HeadlessPage> {
    const profile = await mkdtemp(join(tmpdir(), 'ktrial-chromium-'));
    const proc = spawn(CHROMIUM, ['--headless', '--disable-gpu', '--no-sandbox', '--no-first-run', '--remote-debugging-pipe', `--user-data-dir=${profile}`, 'about:blank'], {
      stdio: ['ignore', 'ignore', 'ignore', 'pipe', 'pipe'],
    });
    const page = new HeadlessPage(proc, profile, proc.stdio[3] as Writable, proc.stdio[4] as Readable);
    const { targetId } = (await page.send('Target.createTarget', { url: 'about:blank' })) as { targetId: string };
    page.sessionId = ((await page.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string }).sessionId;
    await page.send('Page.enable', {}, page.sessionId);
    return page;
  }

  private dispatch(m: Message): void {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error) p?.reject(new Error(m.error.message));
      else p?.resolve(m);
      return;
    }
    const i = this.waiters.findIndex((w) => w.method === m.method && m.sessionId === this.sessionId);
    if (i >= 0) this.waiters.splice(i, 1)[0]!.resolve(m);
  }

  private send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve: (m) => resolve(m.result ?? {}), reject });
      this.commands.write(`${JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) })}\0`);
    });
  }

  /** Loads url and returns once its load event fired (its inline scripts have run). */
  async navigate(url: string): Promise<void> {
    const loaded = new Promise<Message>((resolve) => this.waiters.push({ method: 'Page.loadEventFired', resolve }));
    await this.send('Page.navigate', { url }, this.sessionId);
    await loaded;
  }

  /** The value of a JavaScript expression in the page (JSON-safe values only). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = (await this.send('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true }, this.sessionId)) as { result: { value: T }; exceptionDetails?: { text: string; exception?: { description?: string } } };
    if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
    return r.result.value;
  }

  async close(): Promise<void> {
    const exited = new Promise((resolve) => (this.proc.exitCode !== null ? resolve(undefined) : this.proc.once('exit', resolve)));
    await this.send('Browser.close').catch(() => this.proc.kill('SIGKILL'));
    await exited;
    await rm(this.profile, { recursive: true, force: true });
  }
}
