// Helpers of the test pages: typed arrays to and from base64 (what
// page.evaluate carries back to the test), fixture decoding.

export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

export function fromBase64(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

export function f32Base64(a: Float32Array): string {
  return toBase64(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
}
