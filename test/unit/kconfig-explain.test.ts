// The Kconfig index and the explanations built on it, on real Kconfig text recorded from
// 6.1, 2.6.20 and 2.6.24 (test/fixtures/kconfig/README.md). Each expected dependency list
// is what the Kconfig text says for the symbol: every enclosing `if`, menu `depends on`
// and choice `depends on`, then the entry's own `depends on`.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { repoPath } from '../../harness/common/paths.js';
import { explainMismatches, type Request } from '../../harness/config/explain.js';
import { conditionFrom, dependencies, evaluate, exprText, indexKconfig, parseExpr, promptConditions, type KconfigIndex } from '../../harness/config/kconfig-lang.js';

const DIR = repoPath('test', 'fixtures', 'kconfig');

/** A tree of excerpts, every range put back at its original line numbers. */
async function tree(name: string, root: string, srcarch: string): Promise<KconfigIndex> {
  const ranges = JSON.parse(await readFile(`${DIR}/ranges.json`, 'utf8')) as Record<string, Record<string, [number, number][]>>;
  return indexKconfig({
    root,
    vars: { SRCARCH: srcarch, ARCH: 'x86_64' },
    read: async (file) => {
      const spans = ranges[name]![file];
      if (!spans) return undefined;
      const excerpt = (await readFile(`${DIR}/${name}/${file}`, 'utf8')).split('\n');
      const lines: string[] = [];
      for (const [from, to] of spans) {
        while (lines.length < from - 1) lines.push('');
        lines.push(...excerpt.splice(0, to - from + 1));
      }
      return lines.join('\n');
    },
  });
}

const deps = (idx: KconfigIndex, symbol: string) => dependencies(idx.get(symbol)!.definitions[0]!).map((c) => [c.text, conditionFrom(c)]);

function explain(idx: KconfigIndex, symbol: string, value: string, config: Record<string, string>) {
  const values = new Map(Object.entries(config).map(([k, v]) => [`CONFIG_${k}`, v]));
  const asked = new Map<string, Request>([[symbol, { symbol, value, origin: '--kconfig-add' }]]);
  const [m] = explainMismatches([asked.get(symbol)!], values, idx, asked);
  return { reason: m?.reason, fixes: m?.fixes };
}

t.test('expressions: precedence, comparisons and toolchain tests', async (t) => {
  const e = parseExpr('!CC_IS_CLANG || AS_IS_LLVM || (AS_IS_GNU && AS_VERSION >= 23502 && AS_HAS_NON_CONST_LEB128)');
  t.equal(exprText(e), '!CC_IS_CLANG || AS_IS_LLVM || AS_IS_GNU && AS_VERSION >= 23502 && AS_HAS_NON_CONST_LEB128');
  const idx: KconfigIndex = new Map(['CC_IS_CLANG', 'AS_IS_GNU', 'AS_VERSION', 'AS_HAS_NON_CONST_LEB128'].map((s) => [`CONFIG_${s}`, { symbol: `CONFIG_${s}`, definitions: [], selectedBy: [] }]));
  const v = (o: Record<string, string>) => new Map(Object.entries(o).map(([k, x]) => [`CONFIG_${k}`, x]));
  t.equal(evaluate(e, v({ CC_IS_CLANG: 'y', AS_IS_GNU: 'y', AS_VERSION: '24000', AS_HAS_NON_CONST_LEB128: 'y' }), idx), 2);
  t.equal(evaluate(e, v({ CC_IS_CLANG: 'y', AS_IS_GNU: 'y', AS_VERSION: '23400', AS_HAS_NON_CONST_LEB128: 'y' }), idx), 0);
  t.equal(evaluate(parseExpr('SYSVIPC && m'), v({ SYSVIPC: 'y' }), idx), 1);
  t.equal(evaluate(parseExpr('ARCH_SUPPORTS_CFI_CLANG && $(cc-option,-fsanitize=kcfi)'), v({ ARCH_SUPPORTS_CFI_CLANG: 'y' }), idx), 2, 'a toolchain test counts as met');
});

t.test('6.1: LKDTM is inside `if RUNTIME_TESTING_MENU`, and help text is not Kconfig', async (t) => {
  const idx = await tree('linux-6.1', 'Kconfig', 'x86');
  // menuconfig: "Depends on: RUNTIME_TESTING_MENU [=n] && DEBUG_FS [=y]"
  t.same(deps(idx, 'CONFIG_LKDTM'), [
    ['RUNTIME_TESTING_MENU', 'the `if` block at lib/Kconfig.debug:2060'],
    ['DEBUG_FS', 'its `depends on` at lib/Kconfig.debug:2064'],
  ]);
  // The DWARF4 help has a line "if using clang ..."; the real `if DEBUG_INFO` follows the choice.
  t.same(deps(idx, 'CONFIG_DEBUG_INFO_REDUCED'), [['DEBUG_INFO', 'the `if` block at lib/Kconfig.debug:301']]);
  t.same(deps(idx, 'CONFIG_DEBUG_FS'), [], 'no block left open by help text');
  t.same(idx.get('CONFIG_DEBUG_FS')!.definitions[0]!.blocks.map((b) => `${b.kind} ${b.title}`), ['menu Kernel hacking', 'menu Generic Kernel Debugging Instruments']);
  // LKDTM's help sits at the `help` keyword's own indentation and ends at the next entry, in column 0.
  t.same(deps(idx, 'CONFIG_CPUMASK_KUNIT_TEST'), [
    ['RUNTIME_TESTING_MENU', 'the `if` block at lib/Kconfig.debug:2060'],
    ['KUNIT', 'its `depends on` at lib/Kconfig.debug:2077'],
  ]);
  t.same(promptConditions(idx.get('CONFIG_CPUMASK_KUNIT_TEST')!.definitions[0]!).map((c) => c.text), ['!KUNIT_ALL_TESTS']);

  const r = explain(idx, 'CONFIG_LKDTM', 'y', { DEBUG_FS: 'y' });
  t.equal(r.reason, 'CONFIG_LKDTM depends on RUNTIME_TESTING_MENU (the `if` block at lib/Kconfig.debug:2060); CONFIG_RUNTIME_TESTING_MENU is not set');
  t.same(r.fixes, ['CONFIG_RUNTIME_TESTING_MENU=y']);
  const both = explain(idx, 'CONFIG_LKDTM', 'y', {});
  t.match(both.reason, /depends on RUNTIME_TESTING_MENU \(the `if` block at lib\/Kconfig.debug:2060\) and on DEBUG_FS \(its `depends on` at lib\/Kconfig.debug:2064\); CONFIG_RUNTIME_TESTING_MENU is not set, CONFIG_DEBUG_FS is not set/);
  t.same(both.fixes, ['CONFIG_RUNTIME_TESTING_MENU=y', 'CONFIG_DEBUG_FS=y']);
});

t.test('6.1: the "Debug information" choice and the selects of DEBUG_INFO', async (t) => {
  const idx = await tree('linux-6.1', 'Kconfig', 'x86');
  const dwarf4 = idx.get('CONFIG_DEBUG_INFO_DWARF4')!.definitions[0]!;
  t.equal(dwarf4.choice?.title, 'Debug information');
  t.same(dwarf4.choice?.members, ['CONFIG_DEBUG_INFO_NONE', 'CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT', 'CONFIG_DEBUG_INFO_DWARF4', 'CONFIG_DEBUG_INFO_DWARF5']);
  t.same(deps(idx, 'CONFIG_DEBUG_INFO_DWARF4'), [
    ['DEBUG_KERNEL', 'the choice "Debug information" at lib/Kconfig.debug:239'],
    ['!CC_IS_CLANG || AS_IS_LLVM || (AS_IS_GNU && AS_VERSION >= 23502)', 'its `depends on` at lib/Kconfig.debug:273'],
  ]);
  t.same(idx.get('CONFIG_DEBUG_INFO')!.selectedBy.map((s) => [s.symbol, s.at]), [
    ['CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT', 'lib/Kconfig.debug:260'],
    ['CONFIG_DEBUG_INFO_DWARF4', 'lib/Kconfig.debug:272'],
    ['CONFIG_DEBUG_INFO_DWARF5', 'lib/Kconfig.debug:284'],
  ]);

  const entry = explain(idx, 'CONFIG_DEBUG_INFO_DWARF4', 'y', {});
  t.equal(entry.reason, 'CONFIG_DEBUG_INFO_DWARF4 depends on DEBUG_KERNEL (the choice "Debug information" at lib/Kconfig.debug:239); CONFIG_DEBUG_KERNEL is not set');
  t.same(entry.fixes, ['CONFIG_DEBUG_KERNEL=y']);

  const chosen = explain(idx, 'CONFIG_DEBUG_INFO_NONE', 'n', { DEBUG_KERNEL: 'y', DEBUG_INFO_NONE: 'y' });
  t.equal(chosen.reason, 'CONFIG_DEBUG_INFO_NONE is the chosen entry of the choice "Debug information" at lib/Kconfig.debug:239, which must have one');
  t.same(chosen.fixes, ['CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y']);

  const selectedOnly = explain(idx, 'CONFIG_DEBUG_INFO', 'y', {});
  t.equal(
    selectedOnly.reason,
    'CONFIG_DEBUG_INFO has no prompt: it is set only when selected, by CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT, CONFIG_DEBUG_INFO_DWARF4, CONFIG_DEBUG_INFO_DWARF5; ' +
      'CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT is not set; CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT depends on DEBUG_KERNEL (the choice "Debug information" at lib/Kconfig.debug:239); CONFIG_DEBUG_KERNEL is not set',
  );
  t.same(selectedOnly.fixes, ['CONFIG_DEBUG_KERNEL=y', 'CONFIG_DEBUG_INFO_DWARF_TOOLCHAIN_DEFAULT=y']);

  const selected = explain(idx, 'CONFIG_DEBUG_INFO', 'n', { DEBUG_KERNEL: 'y', DEBUG_INFO_DWARF4: 'y', DEBUG_INFO: 'y' });
  t.equal(selected.reason, 'CONFIG_DEBUG_INFO is selected by CONFIG_DEBUG_INFO_DWARF4 (lib/Kconfig.debug:272)');
  t.same(selected.fixes, ['CONFIG_DEBUG_INFO_DWARF4=n']);
});

t.test('2.6.20: E1000 under a menu, an `if` and another menu across sourced files', async (t) => {
  const idx = await tree('linux-2.6.20', 'arch/x86_64/Kconfig', 'x86_64');
  // menuconfig: "Depends on: NET && NETDEVICES && !UML && PCI"
  t.same(deps(idx, 'CONFIG_E1000'), [
    ['NET', 'the menu "Network device support" at drivers/net/Kconfig:6'],
    ['NETDEVICES', 'the `if` block at drivers/net/Kconfig:29'],
    ['!UML', 'the menu "Ethernet (1000 Mbit)" at drivers/net/Kconfig:1913'],
    ['PCI', 'its `depends on` at drivers/net/Kconfig:1958'],
  ]);
  t.same(deps(idx, 'CONFIG_PCI'), [], 'the menu "Bus options" has no `depends on`');

  const r = explain(idx, 'CONFIG_E1000', 'y', { NET: 'y' });
  t.equal(r.reason, 'CONFIG_E1000 depends on NETDEVICES (the `if` block at drivers/net/Kconfig:29) and on PCI (its `depends on` at drivers/net/Kconfig:1958); CONFIG_NETDEVICES is not set, CONFIG_PCI is not set');
  t.same(r.fixes, ['CONFIG_NETDEVICES=y', 'CONFIG_PCI=y']);
  t.same(explain(idx, 'CONFIG_E1000', 'y', {}).fixes, ['CONFIG_NET=y', 'CONFIG_NETDEVICES=y', 'CONFIG_PCI=y'], 'every symbol on the way, outermost first');

  const preempt = explain(idx, 'CONFIG_PREEMPT_NONE', 'n', { PREEMPT_NONE: 'y' });
  t.equal(preempt.reason, 'CONFIG_PREEMPT_NONE is the chosen entry of the choice "Preemption Model" at kernel/Kconfig.preempt:2, which must have one');
  t.same(preempt.fixes, ['CONFIG_PREEMPT_VOLUNTARY=y']);
  t.equal(explain(idx, 'CONFIG_PID_NS', 'y', {}).reason, "CONFIG_PID_NS does not exist in this kernel's Kconfig");
});

t.test('2.6.24: a choice with its own `depends on`, prompts behind EMBEDDED, and a symbol only selects set', async (t) => {
  const idx = await tree('linux-2.6.24', 'arch/x86/Kconfig', 'x86');
  t.same(deps(idx, 'CONFIG_FAIR_CGROUP_SCHED'), [
    ['FAIR_GROUP_SCHED', 'the choice "Basis for grouping tasks" at init/Kconfig:334'],
    ['CGROUPS', 'its `depends on` at init/Kconfig:347'],
  ]);
  const epoll = idx.get('CONFIG_EPOLL')!.definitions[0]!;
  t.same(promptConditions(epoll).map((c) => [c.text, conditionFrom(c)]), [['EMBEDDED', "its prompt's `if` at init/Kconfig:556"]]);
  t.same(deps(idx, 'CONFIG_UID16').length, 1, 'EMBEDDED\'s help, indented with spaces after a tab, ends at the next entry');

  const settable = explain(idx, 'CONFIG_ANON_INODES', 'y', { EMBEDDED: 'y' });
  t.equal(settable.reason, 'CONFIG_ANON_INODES has no prompt: it is set only when selected, by CONFIG_EPOLL, CONFIG_SIGNALFD, CONFIG_TIMERFD, CONFIG_EVENTFD');
  t.same(settable.fixes, ['CONFIG_EPOLL=y']);

  const hidden = explain(idx, 'CONFIG_ANON_INODES', 'y', {});
  t.match(hidden.reason, /; CONFIG_EPOLL is not set; CONFIG_EPOLL's prompt is shown only if EMBEDDED \(its prompt's `if` at init\/Kconfig:556\); CONFIG_EMBEDDED is not set$/);
  t.same(hidden.fixes, ['CONFIG_EMBEDDED=y', 'CONFIG_EPOLL=y']);

  const off = explain(idx, 'CONFIG_EPOLL', 'n', { EPOLL: 'y', ANON_INODES: 'y' });
  t.equal(off.reason, "CONFIG_EPOLL's prompt is shown only if EMBEDDED (its prompt's `if` at init/Kconfig:556), so its default (init/Kconfig:555) decides; CONFIG_EMBEDDED is not set");
  t.same(off.fixes, ['CONFIG_EMBEDDED=y']);

  const broken = explain(idx, 'CONFIG_TIMERFD', 'y', { EMBEDDED: 'y' });
  t.equal(broken.reason, 'CONFIG_TIMERFD depends on BROKEN (its `depends on` at init/Kconfig:576); CONFIG_BROKEN is not set; CONFIG_BROKEN has no prompt, and nothing selects it: only its default sets it');
  t.same(broken.fixes, []);
});
