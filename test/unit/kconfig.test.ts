import t from 'tap';
import { applySettings, mergeLayers, parseConfig } from '../../harness/config/kconfig.js';

t.test('parse .config lines, set and unset', async (t) => {
  const s = parseConfig('CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_C="str"\n# comment\nCONFIG_D=0x10\n', 'f');
  t.same(s.map((x) => [x.symbol, x.value, x.origin.line]), [
    ['CONFIG_A', 'y', 1],
    ['CONFIG_B', 'n', 2],
    ['CONFIG_C', '"str"', 3],
    ['CONFIG_D', '0x10', 5],
  ]);
});

t.test('later layers win and conflicts are reported with both places', async (t) => {
  const m = mergeLayers([parseConfig('CONFIG_A=y\nCONFIG_B=y\n', 'one.config'), parseConfig('# CONFIG_A is not set\nCONFIG_B=y\n', 'two.config')]);
  t.equal(m.requested.get('CONFIG_A')?.value, 'n');
  t.equal(m.conflicts.length, 1);
  t.equal(m.conflicts[0]!.earlier.origin.file, 'one.config');
  t.equal(m.conflicts[0]!.later.origin.file, 'two.config');
});

t.test('settings replace "is not set" lines in place instead of appending', async (t) => {
  const base = 'CONFIG_X=y\n# CONFIG_UTS_NS is not set\nCONFIG_KEEP=y\n';
  const out = applySettings(base, parseConfig('CONFIG_UTS_NS=y\n# CONFIG_X is not set\nCONFIG_NEW=m\n', 'frag'));
  t.equal(out, '# CONFIG_X is not set\nCONFIG_UTS_NS=y\nCONFIG_KEEP=y\nCONFIG_NEW=m\n');
});
