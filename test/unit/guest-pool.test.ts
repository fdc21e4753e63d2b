// The run's guest pool records each boot: the time a guest took to answer SSH, and for a
// boot that failed no time but the failure. The pool's VmPool is a stand-in here; the real
// boots are in test/integration/recovery.test.ts.
import t from 'tap';
import { GuestPool } from '../../harness/vm/pool.js';
import type { Vm } from '../../harness/vm/guest.js';

const guest = () => ({ timings: {}, close: async () => {} }) as unknown as Vm;

t.test('a boot that answered has its boot time; one that failed has none, and says why', async (t) => {
  let boots = 0;
  const pool = new GuestPool({ create: async () => (++boots === 1 ? guest() : Promise.reject(new Error('no SSH within 120 s'))) }, '/nonexistent', 1, 1);
  const first = await pool.acquire();
  t.ok('vm' in first, 'the first guest is lent');
  if (!('vm' in first)) return;
  await pool.release(first, 'the kernel crashed');
  await t.rejects(pool.acquire(), /no SSH within 120 s/, 'the replacement boot fails');
  const [one, two] = pool.boots;
  t.type(one?.bootMs, 'number', 'boot 1 records how long it took');
  t.ok(Number.isFinite(one?.bootMs) && one!.bootMs! >= 0);
  t.equal(two?.bootMs, undefined, 'the failed boot 2 records no boot time');
  t.match(two?.ended, /^boot failed: no SSH within 120 s/);
  await pool.close();
});
