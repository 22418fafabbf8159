// Positioned reads that fill their buffer: readSync may return fewer bytes
// than asked, so loop until the buffer is full or the file ends.
import { readSync } from "../node/host.node.js";

/** Reads into `into` from `position`; returns the bytes read (fewer only at end of file). */
export function readAt(fd: number, into: Uint8Array, position: number): number {
  let got = 0;
  while (got < into.byteLength) {
    const n = readSync(fd, into, got, into.byteLength - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
