// What the kernel under test can reach. Its user network is restricted (restrict=on: the
// host-forwarded SSH port works, nothing the guest opens leaves QEMU) unless the run asks
// for outbound network; QEMU runs in its seccomp sandbox where it has one; and when ktrial
// runs as root, QEMU runs as an unprivileged user of its own, so a guest that escapes into
// QEMU holds nothing. QEMU opens no file of ours by path: qemu.ts hands it descriptors.
import { spawn } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import type { NetworkAccess } from '../common/network.js';
import { qemuCommand } from './qemu.js';

export type { NetworkAccess };

/** QEMU's seccomp sandbox, every optional filter on. */
export const SANDBOX_OPTIONS = 'on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny';

/** The users QEMU may run as when ktrial runs as root, in order: ktrial's own (setup makes it), then nobody. */
export const QEMU_USERS = ['ktrial-qemu', 'nobody'] as const;

export interface QemuUser {
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups QEMU keeps (kvm's, for /dev/kvm); none otherwise. */
  groups: number[];
}

/** How a guest's QEMU was confined, as results.json records it. */
export interface Confinement {
  network: NetworkAccess;
  /** QEMU ran with -sandbox SANDBOX_OPTIONS. */
  sandbox: boolean;
  /** The user QEMU ran as: its own (root ran ktrial) or the invoking user's. */
  user: string;
}

/** The user-network backend: SSH forwarded from the host's loopback, restricted unless outbound. */
export const netdevOption = (port: number, network: NetworkAccess): string =>
  `user,id=net0,restrict=${network === 'confined' ? 'on' : 'off'},hostfwd=tcp:127.0.0.1:${port}-:22`;

/** QEMU's arguments for its sandbox. */
export const sandboxArgs = (sandbox: boolean): string[] => (sandbox ? ['-sandbox', SANDBOX_OPTIONS] : []);

interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
}

async function passwdEntry(name: string): Promise<PasswdEntry | undefined> {
  const text = await readFile('/etc/passwd', 'utf8').catch(() => '');
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f.length >= 4) return { name, uid: Number(f[2]), gid: Number(f[3]) };
  }
  return undefined;
}

/** The group that owns /dev/kvm, when there is one: QEMU keeps it so the KVM probe and KVM guests work. */
export async function kvmGroup(): Promise<number[]> {
  const st = await stat('/dev/kvm').catch(() => undefined);
  return st && st.gid !== 0 ? [st.gid] : [];
}

/** The user QEMU runs as: one of QEMU_USERS when ktrial runs as root; otherwise none (QEMU runs as the invoking user). */
export async function qemuUser(): Promise<QemuUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  for (const name of QEMU_USERS) {
    const e = await passwdEntry(name);
    if (e && e.uid !== 0) return { ...e, groups: await kvmGroup() };
  }
  return undefined;
}

/**
 * Whether this QEMU starts in its sandbox, as the user it will run as: it is started with
 * the sandbox and QMP on stdin, told to quit, and must exit cleanly.
 */
export function probeSandbox(qemu: string, user: QemuUser | undefined, timeoutMs = 10_000): Promise<{ ok: boolean; detail: string }> {
  const [cmd, argv] = qemuCommand(qemu, ['-sandbox', SANDBOX_OPTIONS, '-machine', 'none', '-nodefaults', '-display', 'none', '-qmp', 'stdio'], user);
  return new Promise((resolve) => {
    const c = spawn(cmd, argv, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('error', (e) => {
      clearTimeout(timer);
      resolve({ ok: false, detail: e.message });
    });
    c.on('close', (code) => {
      clearTimeout(timer);
      resolve(code === 0 ? { ok: true, detail: SANDBOX_OPTIONS } : { ok: false, detail: err.trim().split('\n').at(-1) || `exit ${code}` });
    });
    c.stdin.end('{"execute":"qmp_capabilities"}\n{"execute":"quit"}\n');
  });
}

export interface QemuConfinement {
  sandbox: boolean;
  /** Why there is no sandbox, when there is none. */
  sandboxProblem?: string;
  user?: QemuUser;
}

const known = new Map<string, Promise<QemuConfinement>>();

/** How every QEMU of this binary is confined; decided once per process. */
export function confinementFor(qemu: string): Promise<QemuConfinement> {
  let c = known.get(qemu);
  if (!c) {
    c = (async () => {
      const user = await qemuUser();
      const probe = await probeSandbox(qemu, user);
      return { sandbox: probe.ok, ...(probe.ok ? {} : { sandboxProblem: probe.detail }), ...(user ? { user } : {}) };
    })();
    known.set(qemu, c);
  }
  return c;
}

/** The user as results.json and the summary name it. */
export const userName = (user: QemuUser | undefined): string => (user ? `${user.name} (uid ${user.uid})` : `the invoking user (uid ${process.getuid?.() ?? '?'})`);
