// What a guest's network may reach: a value trials, suites, plans and the VM stage all speak of.

/** confined: the guest reaches nothing but what ktrial forwards to it; outbound: QEMU's user network routes its traffic. */
export type NetworkAccess = 'confined' | 'outbound';
export const NETWORK_ACCESS: readonly NetworkAccess[] = ['confined', 'outbound'];
