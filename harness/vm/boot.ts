// The usual way to start a guest for a run: a fresh client key, the run's initramfs
// (base image + that key) in the run directory, then createVm().
import { join } from 'node:path';
import type { StageContext } from '../common/context.js';
import { writeRunOverlay, type GuestImage } from '../image/index.js';
import { generateClientKey } from './ssh.js';
import { createVm, type VmRequest } from './vm.js';
import type { Vm } from './guest.js';

export type BootRequest = Omit<VmRequest, 'initramfs' | 'hostKeyPublic' | 'clientPrivateKey' | 'consoleLog'> & {
  /** Where the run's initramfs and (unless consoleLog is given) console.log go. */
  runDir: string;
  consoleLog?: string;
};

export async function bootGuest(image: GuestImage, req: BootRequest, ctx: StageContext): Promise<Vm> {
  const key = generateClientKey();
  const initramfs = await writeRunOverlay(image, key.publicKey, req.runDir);
  const { runDir, consoleLog, ...rest } = req;
  return createVm(
    {
      ...rest,
      initramfs,
      hostKeyPublic: image.hostKeyPublic,
      clientPrivateKey: key.privateKey,
      consoleLog: consoleLog ?? join(runDir, 'console.log'),
    },
    ctx,
  );
}
