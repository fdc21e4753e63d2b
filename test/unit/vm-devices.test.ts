import t from 'tap';
import { readFileSync } from 'node:fs';
import { checkCpus, chooseDevices } from '../../harness/vm/devices.js';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { KtrialError } from '../../harness/common/errors.js';

const base = ['CONFIG_BLK_DEV_INITRD=y', 'CONFIG_SERIAL_8250_CONSOLE=y', 'CONFIG_INET=y'];
const cfg = (...lines: string[]) => KernelConfig.parse([...base, ...lines].join('\n'));

t.test('KernelConfig reads values; "is not set" and =n mean not set; the prefix is optional', async (t) => {
  const m = KernelConfig.parse('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="x y"\nCONFIG_D=m\nCONFIG_E=y\nCONFIG_E=n\n');
  t.equal(m.get('CONFIG_A'), 'y');
  t.equal(m.get('A'), 'y');
  t.equal(m.get('CONFIG_B'), undefined);
  t.equal(m.get('CONFIG_C'), 'x y');
  t.equal(m.get('CONFIG_D'), 'm');
  t.equal(m.get('CONFIG_E'), undefined, 'a later =n unsets');
  const implied = m.withDefaults({ CONFIG_UTS_NS: 'y', CONFIG_A: 'm' });
  t.same([implied.get('UTS_NS'), implied.get('A')], ['y', 'y'], 'defaults fill only what the config does not set');
});

t.test('more than one CPU needs CONFIG_SMP', async (t) => {
  t.doesNotThrow(() => checkCpus(cfg(), 1), 'one CPU for any kernel');
  t.throws(() => checkCpus(cfg(), 2), { message: /2 guest CPUs were asked for, but the kernel's config lacks CONFIG_SMP/ });
  t.doesNotThrow(() => checkCpus(cfg('CONFIG_SMP=y'), 4));
});

t.test('virtio-net is preferred, and virtio-rng comes with HW_RANDOM_VIRTIO', async (t) => {
  const d = chooseDevices(cfg('CONFIG_VIRTIO_PCI=y', 'CONFIG_VIRTIO_NET=y', 'CONFIG_E1000=y', 'CONFIG_HW_RANDOM_VIRTIO=y'));
  t.equal(d.nic, 'virtio-net-pci');
  t.same(d.extra, ['virtio-rng-pci']);
});

t.test('a 2.6-era config gets e1000 and no virtio devices', async (t) => {
  const d = chooseDevices(cfg('CONFIG_E1000=y', 'CONFIG_PCI=y'));
  t.equal(d.nic, 'e1000');
  t.same(d.extra, []);
});

t.test('a NIC built as a module does not count (the guest has no modules)', async (t) => {
  const d = chooseDevices(cfg('CONFIG_VIRTIO_PCI=y', 'CONFIG_VIRTIO_NET=m', 'CONFIG_NE2K_PCI=y'));
  t.equal(d.nic, 'ne2k_pci');
});

t.test('no usable NIC, or no serial console, is refused with a hint', async (t) => {
  t.throws(() => chooseDevices(cfg('CONFIG_VIRTIO_NET=m')), KtrialError);
  try {
    chooseDevices(KernelConfig.parse('CONFIG_E1000=y\nCONFIG_INET=y\nCONFIG_BLK_DEV_INITRD=y\n'));
    t.fail('expected an error');
  } catch (err) {
    t.ok(err instanceof KtrialError);
    t.equal((err as KtrialError).cls, 'bad-input');
    t.match((err as KtrialError).message, /CONFIG_SERIAL_8250_CONSOLE/);
  }
});

t.test('the project\'s guest fragments are enough on their own', async (t) => {
  const frag = (name: string) => readFileSync(new URL(`../../../configs/fragments/${name}`, import.meta.url), 'utf8');
  t.equal(chooseDevices(KernelConfig.parse(frag('guest-2.6.config'))).nic, 'e1000');
  const modern = chooseDevices(KernelConfig.parse(frag('guest-modern.config')));
  t.equal(modern.nic, 'virtio-net-pci');
  t.same(modern.extra, ['virtio-rng-pci']);
});
