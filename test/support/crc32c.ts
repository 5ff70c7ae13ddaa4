// The textbook CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), bit by bit: an oracle for
// tests, independent of the library the product uses.
export function referenceCrc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) {
    crc ^= byte;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}

/** As backup_manifest prints it: the 4 bytes little-endian, in hex. */
export function manifestCrc32c(bytes: Uint8Array): string {
  const le = Buffer.alloc(4);
  le.writeUInt32LE(referenceCrc32c(bytes));
  return le.toString('hex');
}
