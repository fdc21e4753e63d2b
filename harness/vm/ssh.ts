// The SSH side of a guest: one ssh2 connection per run, reused for every command, with the
// guest's host key pinned (the image stage generated it; nothing else is accepted).
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import ssh2, { type Client as ClientT, type ClientChannel, type ConnectConfig } from 'ssh2';

// ssh2 is CommonJS: take its classes from the default export.
const { Client } = ssh2;
type Client = ClientT;

export interface ClientKey {
  /** OpenSSH private key text. */
  privateKey: string;
  /** One OpenSSH public key line. */
  publicKey: string;
}

/**
 * A fresh ed25519 key for one run (its public half goes into the run's initramfs overlay),
 * made by node:crypto and written in OpenSSH's formats here. ssh2's own generator drops a
 * public key's leading zero bytes, so one key in 256 came out malformed: ssh2 could not
 * parse it, no SSH attempt of that run ever reached the guest, and the boot looked like a
 * silent guest (mscdex/ssh2 issue 1390).
 */
export function generateClientKey(comment = 'ktrial-run'): ClientKey {
  const jwk = generateKeyPairSync('ed25519').privateKey.export({ format: 'jwk' });
  const seed = Buffer.from(jwk.d!, 'base64url');
  const pub = Buffer.from(jwk.x!, 'base64url');
  const u32 = (n: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(n);
    return b;
  };
  const str = (v: Buffer | string) => Buffer.concat([u32(Buffer.byteLength(v)), Buffer.from(v)]);
  const publicBlob = Buffer.concat([str('ssh-ed25519'), str(pub)]);
  // OpenSSH's key format (PROTOCOL.key): unencrypted, one key; the private section is
  // padded with 1, 2, 3, ... to a multiple of 8 bytes.
  const check = randomBytes(4).readUInt32BE();
  const section = Buffer.concat([u32(check), u32(check), str('ssh-ed25519'), str(pub), str(Buffer.concat([seed, pub])), str(comment)]);
  const padded = Buffer.concat([section, Buffer.from(Array.from({ length: (8 - (section.length % 8)) % 8 }, (_, i) => i + 1))]);
  const body = Buffer.concat([Buffer.from('openssh-key-v1\0'), str('none'), str('none'), str(''), u32(1), str(publicBlob), str(padded)]);
  const lines = body.toString('base64').match(/.{1,70}/g)!;
  return {
    privateKey: ['-----BEGIN OPENSSH PRIVATE KEY-----', ...lines, '-----END OPENSSH PRIVATE KEY-----', ''].join('\n'),
    publicKey: `ssh-ed25519 ${publicBlob.toString('base64')} ${comment}`,
  };
}

/** The key blob of an OpenSSH public key line ("ssh-ed25519 AAAA... [comment]"). */
export function publicKeyBlob(line: string): Buffer {
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2 || !/^[A-Za-z0-9+/=]+$/.test(parts[1]!)) throw new Error(`not an OpenSSH public key line: ${line.slice(0, 40)}`);
  return Buffer.from(parts[1]!, 'base64');
}

export interface ExecOptions {
  timeoutMs: number;
  stdin?: string | Buffer;
  /** Called when the timeout strikes, before the channel is closed (e.g. to kill the command's processes). */
  onTimeout?: () => Promise<void>;
}

export interface ExecResult {
  /** The command's exit status; null when it was killed by a signal or timed out. */
  exitCode: number | null;
  /** Signal name when the command was killed by one. */
  signal?: string;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
}

/** Why a connection attempt ended; the flags tell which failures no retry can help. */
export interface SshConnectFailure {
  hostKeyMismatch?: boolean;
  timedOut?: boolean;
  /** The server completed the handshake and refused the client key. */
  keyRefused?: boolean;
  /** The client could not start at all (its key or settings are unusable). */
  clientUnusable?: boolean;
}

export class SshConnectError extends Error {
  readonly hostKeyMismatch: boolean;
  readonly timedOut: boolean;
  readonly keyRefused: boolean;
  readonly clientUnusable: boolean;
  constructor(message: string, why: SshConnectFailure = {}) {
    super(message);
    this.name = 'SshConnectError';
    this.hostKeyMismatch = why.hostKeyMismatch ?? false;
    this.timedOut = why.timedOut ?? false;
    this.keyRefused = why.keyRefused ?? false;
    this.clientUnusable = why.clientUnusable ?? false;
  }
}

export interface SshTarget {
  host: string;
  port: number;
  hostKeyPublic: string;
  privateKey: string;
  user?: string;
}

/** One attempt at a complete SSH handshake and authentication. */
export function connectOnce(t: SshTarget, timeoutMs: number): Promise<Client> {
  const expected = publicKeyBlob(t.hostKeyPublic);
  return new Promise((resolve, reject) => {
    const c = new Client();
    let mismatch = false;
    let settled = false;
    const done = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        c.removeAllListeners('ready');
        c.on('error', () => {});
        c.destroy();
        reject(err);
      } else resolve(c);
    };
    const timer = setTimeout(() => done(new SshConnectError(`no SSH handshake within ${timeoutMs} ms`, { timedOut: true })), timeoutMs + 200);
    c.on('ready', () => {
      // Commands are small request/response exchanges: without this, Nagle's algorithm
      // and the guest's delayed ACKs add up to 40 ms to many of them.
      c.setNoDelay(true);
      done();
    });
    c.on('error', (err: Error & { level?: string }) =>
      done(
        new SshConnectError(mismatch ? "the guest presented a host key other than the image's" : err.message, {
          hostKeyMismatch: mismatch,
          timedOut: /timed out/i.test(err.message),
          keyRefused: err.level === 'client-authentication',
        }),
      ),
    );
    c.on('close', () => done(new SshConnectError('connection closed during the handshake', { hostKeyMismatch: mismatch })));
    const cfg: ConnectConfig = {
      host: t.host,
      port: t.port,
      username: t.user ?? 'root',
      privateKey: t.privateKey,
      readyTimeout: timeoutMs,
      keepaliveInterval: 0,
      hostVerifier: (key: Buffer) => {
        const ok = Buffer.isBuffer(key) && key.equals(expected);
        if (!ok) mismatch = true;
        return ok;
      },
      algorithms: { serverHostKey: ['ssh-ed25519'] },
    };
    try {
      c.connect(cfg);
    } catch (err) {
      done(new SshConnectError(`the SSH client cannot start: ${(err as Error).message}`, { clientUnusable: true }));
    }
  });
}

/** Run one command on an open connection. On timeout the channel is signalled and closed. */
export function execOn(c: Client, cmd: string, opts: ExecOptions): Promise<ExecResult> {
  const t0 = Date.now();
  return new Promise((resolve, reject) => {
    // A hung guest may never open the channel at all: the deadline runs from the request.
    let opened = false;
    const openTimer = setTimeout(() => {
      if (!opened) resolve({ exitCode: null, stdout: '', stderr: '', durationMs: Date.now() - t0, timedOut: true });
    }, opts.timeoutMs + 2000);
    c.exec(cmd, (err, stream: ClientChannel) => {
      opened = true;
      clearTimeout(openTimer);
      if (err) return reject(err);
      const out: Buffer[] = [];
      const errb: Buffer[] = [];
      let exitCode: number | null = null;
      let signal: string | undefined;
      let timedOut = false;
      let finished = false;
      const timer = setTimeout(() => {
        timedOut = true;
        try {
          stream.signal('KILL');
        } catch {
          // the channel may already be closing
        }
        const kill = opts.onTimeout ? opts.onTimeout().catch(() => undefined) : Promise.resolve();
        void kill.then(() => {
          stream.close();
          // If the guest never answers the close, give up on the channel anyway.
          setTimeout(() => finish(), 2000).unref();
        });
      }, opts.timeoutMs);
      const finish = () => {
        if (finished) return;
        finished = true;
        clearTimeout(timer);
        const r: ExecResult = {
          exitCode: timedOut ? null : exitCode,
          stdout: Buffer.concat(out).toString('utf8'),
          stderr: Buffer.concat(errb).toString('utf8'),
          durationMs: Date.now() - t0,
          timedOut,
        };
        if (signal !== undefined) r.signal = signal;
        resolve(r);
      };
      stream.on('data', (d: Buffer) => out.push(d));
      stream.stderr.on('data', (d: Buffer) => errb.push(d));
      stream.on('exit', (code: number | null, sig?: string) => {
        if (typeof code === 'number') exitCode = code;
        if (sig) signal = sig;
      });
      stream.on('close', finish);
      stream.on('error', () => finish());
      if (opts.stdin !== undefined) stream.end(opts.stdin);
      else stream.end();
    });
  });
}

