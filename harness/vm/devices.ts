// Which QEMU devices a guest gets is decided by its kernel's .config, from the tables
// below (data, in order of preference), never by kernel version.
import { badInput } from '../common/errors.js';
import type { KernelConfig } from '../config/kconfig.js';

/** Built in (=y); a module cannot help, the guest has no modules. */
const builtIn = (cfg: KernelConfig, opt: string) => cfg.get(opt) === 'y';

export interface DeviceRule {
  /** QEMU -device driver name. */
  device: string;
  /** Every option that must be built in. */
  needs: string[];
  /** Extra -device properties. */
  props?: string;
}

/** Network cards the guest kernel can drive, best first. */
export const NIC_TABLE: readonly DeviceRule[] = [
  { device: 'virtio-net-pci', needs: ['CONFIG_VIRTIO_NET', 'CONFIG_VIRTIO_PCI'] },
  { device: 'e1000', needs: ['CONFIG_E1000'] },
  { device: 'e1000e', needs: ['CONFIG_E1000E'] },
  { device: 'rtl8139', needs: ['CONFIG_8139CP'] },
  { device: 'rtl8139', needs: ['CONFIG_8139TOO'] },
  { device: 'ne2k_pci', needs: ['CONFIG_NE2K_PCI'] },
  { device: 'pcnet', needs: ['CONFIG_PCNET32'] },
];

/** Devices added whenever the kernel can use them. */
export const OPTIONAL_TABLE: readonly DeviceRule[] = [
  // Entropy: without it dropbear can wait seconds for randomness on modern kernels.
  { device: 'virtio-rng-pci', needs: ['CONFIG_HW_RANDOM_VIRTIO', 'CONFIG_VIRTIO_PCI'] },
];

export interface DeviceChoice {
  nic: string;
  /** -device arguments (without "-device"), NIC last with its netdev property added by the caller. */
  extra: string[];
  /** Human-readable reasons, for logs. */
  notes: string[];
}

/** Options without which ktrial cannot boot or watch a guest at all. */
export const REQUIRED_OPTIONS: readonly { option: string; why: string }[] = [
  { option: 'CONFIG_BLK_DEV_INITRD', why: 'the guest userland is an initramfs' },
  { option: 'CONFIG_SERIAL_8250_CONSOLE', why: 'the console (ttyS0) is how ktrial sees boot progress and crashes' },
  { option: 'CONFIG_INET', why: 'the guest is reached over SSH' },
];

/** Refuse more than one guest CPU for a kernel that would use only one of them. */
export function checkCpus(cfg: KernelConfig, cpus: number): void {
  if (cpus > 1 && !builtIn(cfg, 'CONFIG_SMP')) {
    throw badInput(`${cpus} guest CPUs were asked for, but the kernel's config lacks CONFIG_SMP, so it would run on one`, {
      hint: 'add CONFIG_SMP=y to the trial\'s config (or --kconfig-add CONFIG_SMP=y), or run with one CPU',
    });
  }
}

export function chooseDevices(cfg: KernelConfig): DeviceChoice {
  const missing = REQUIRED_OPTIONS.filter((r) => !builtIn(cfg, r.option));
  if (missing.length) {
    throw badInput(`the kernel config lacks what every ktrial guest needs: ${missing.map((m) => `${m.option} (${m.why})`).join('; ')}`, {
      hint: 'add the guest fragment of your kernel era (configs/fragments/guest-*.config) to the trial\'s config fragments',
    });
  }
  const fits = (r: DeviceRule) => r.needs.every((o) => builtIn(cfg, o));
  const nic = NIC_TABLE.find(fits);
  if (!nic) {
    throw badInput('the kernel has no built-in network driver QEMU can provide, so the guest cannot be reached over SSH', {
      hint: `build one of these into the kernel (=y): ${NIC_TABLE.map((r) => r.needs.join('+')).join(', ')}`,
    });
  }
  const extra: string[] = [];
  const notes = [`NIC ${nic.device} (${nic.needs.join(', ')}=y)`];
  for (const r of OPTIONAL_TABLE) {
    if (fits(r)) {
      extra.push(r.props ? `${r.device},${r.props}` : r.device);
      notes.push(`${r.device} (${r.needs.join(', ')}=y)`);
    }
  }
  return { nic: nic.props ? `${nic.device},${nic.props}` : nic.device, extra, notes };
}
