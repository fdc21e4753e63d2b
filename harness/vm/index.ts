// The VM stage: public API.
export { createVm, GUEST_INIT, type VmRequest, type ExecOptions, type ExecResult } from './vm.js';
export type { Vm, BootTimings } from './guest.js';
export { bootGuest, guestAccess, type BootRequest, type GuestAccess } from './boot.js';
export { runCommandInGuest, interactiveShell, commandLine } from './interactive.js';
export { generateClientKey, type ClientKey } from './ssh.js';
export { killAllGuests, liveGuestPids } from './qemu.js';
export { accelArgs, chooseAccel, probeKvm, type Accel, type AccelVerdict } from './accel.js';
export { chooseDevices, NIC_TABLE, OPTIONAL_TABLE, type DeviceChoice } from './devices.js';
export { parseConsole, classifyLine, summarize, excerptAround, FATAL_KINDS, PROBLEM_KINDS, WARNING_KINDS, type ConsoleEvent, type ConsoleEventKind, type ConsoleSummary } from './console.js';
export { ConsoleWatch, type TimedEvent } from './consolewatch.js';
export { GuestPool, type VmPool, type BootRecord, type PoolLease } from './pool.js';
