// Loaded with `node --import` into the ktrial processes the benchmark starts: when the
// process exits, write its own peak resident memory (VmHWM from /proc/self/status, and
// getrusage's maxRSS) to the file named by KTRIAL_BENCH_HWM. Only the ktrial (node)
// process is measured, not QEMU or the compilers it runs.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.KTRIAL_BENCH_HWM;
if (out) {
  process.on('exit', () => {
    try {
      const status = readFileSync('/proc/self/status', 'utf8');
      const hwm = /^VmHWM:\s+(\d+) kB/m.exec(status);
      writeFileSync(out, JSON.stringify({ vmHwmKiB: hwm ? Number(hwm[1]) : null, maxRssKiB: process.resourceUsage().maxRSS, atMs: Date.now() }));
    } catch {
      // Measuring must never change how ktrial exits.
    }
  });
}
