// QEMU's machine protocol (QMP) over a Unix socket: one JSON object per line each way.
// ktrial uses it only to save a guest's state to a file and to resume the guest after.
import { connect, type Socket } from 'node:net';

export interface QmpClient {
  execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T>;
  close(): void;
}

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** Connect to a QMP socket, read the greeting and leave capabilities negotiation done. */
export async function connectQmp(path: string, timeoutMs = 5000): Promise<QmpClient> {
  const sock: Socket = await new Promise((resolve, reject) => {
    const s = connect(path);
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`no QMP connection on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    s.once('connect', () => {
      clearTimeout(timer);
      resolve(s);
    });
    s.once('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
  });
  const queue: Pending[] = [];
  let greeted: (() => void) | undefined;
  const greeting = new Promise<void>((r) => (greeted = r));
  let buf = '';
  const fail = (e: Error) => {
    for (const p of queue.splice(0)) p.reject(e);
  };
  sock.on('data', (d: Buffer) => {
    buf += d.toString('utf8');
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line) as { QMP?: unknown; return?: unknown; error?: { desc?: string }; event?: string };
      if (msg.QMP) greeted?.();
      else if (msg.event) continue;
      else if ('return' in msg) queue.shift()?.resolve(msg.return);
      else if (msg.error) queue.shift()?.reject(new Error(`QMP: ${msg.error.desc ?? JSON.stringify(msg.error)}`));
    }
  });
  sock.on('error', (e) => fail(e));
  sock.on('close', () => fail(new Error('the QMP connection closed')));
  const client: QmpClient = {
    execute<T>(command: string, args?: Record<string, unknown>) {
      return new Promise<T>((resolve, reject) => {
        queue.push({ resolve: resolve as (v: unknown) => void, reject });
        sock.write(`${JSON.stringify(args ? { execute: command, arguments: args } : { execute: command })}\n`);
      });
    },
    close: () => sock.destroy(),
  };
  await greeting;
  await client.execute('qmp_capabilities');
  return client;
}
