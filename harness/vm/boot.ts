// The usual way to start a guest for a run: the run's client key and initramfs (base image
// + that key) in the run directory, then createVm().
import { join } from 'node:path';
import type { StageContext } from '../common/context.js';
import { writeRunOverlay, type GuestImage } from '../image/index.js';
import { generateClientKey } from './ssh.js';
import { createVm, type VmRequest } from './vm.js';
import type { Vm } from './guest.js';

/**
 * What every guest of a run boots with: one client key and the initramfs that carries its
 * public half, written once, so guests booted side by side never race on the file.
 */
export type GuestAccess = Pick<VmRequest, 'initramfs' | 'hostKeyPublic' | 'clientPrivateKey'>;

export type BootRequest = Omit<VmRequest, 'initramfs' | 'hostKeyPublic' | 'clientPrivateKey' | 'consoleLog'> & {
  /** Where console.log goes unless consoleLog is given. */
  runDir: string;
  consoleLog?: string;
};

/** A fresh client key and the run's initramfs.cpio with it, in runDir. */
export async function guestAccess(image: GuestImage, runDir: string): Promise<GuestAccess> {
  const key = generateClientKey();
  const initramfs = await writeRunOverlay(image, key.publicKey, runDir);
  return { initramfs, hostKeyPublic: image.hostKeyPublic, clientPrivateKey: key.privateKey };
}

export async function bootGuest(access: GuestAccess, req: BootRequest, ctx: StageContext): Promise<Vm> {
  const { runDir, consoleLog, ...rest } = req;
  return createVm({ ...rest, ...access, consoleLog: consoleLog ?? join(runDir, 'console.log') }, ctx);
}
