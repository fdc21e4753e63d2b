// The guest image stage: public API.
export { buildGuestImage, writeRunOverlay, runOverlayEntries, type GuestImage, type GuestImageRequest, type GuestImageManifest, type ExtraProgram } from './image.js';
export { buildCpio, type CpioEntry } from './cpio.js';
export { buildUserland, type Userland, type ComponentManifest } from './userland.js';
