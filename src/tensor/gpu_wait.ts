// Waiting for the GPU without spinning a CPU core.
//
// dawn.node settles a pending GPU promise (mapAsync, onSubmittedWorkDone) by
// polling: while one is pending, each tick processes Dawn's events and queues
// the next tick through the global `setImmediate`, so the main thread runs at
// 100% for the whole wait. Where the "GPU" is lavapipe on the same cores,
// that spin takes a core from the shader threads: on the 2-core machine a
// chain of 768² matmuls ran 20-45% slower with it, and the main thread burned
// about 60% of the wait (see bench/gpu_wait.bench.ts).
//
// `awaitGpu` paces those ticks while one of our waits is pending: they stay
// immediate for the first millisecond (short waits stay short on a real
// GPU), then each runs on a 1 ms timer. It works because dawn.node looks
// `setImmediate` up on the global object at every tick; with another binding
// the patch is inert and the wait is as before. Other code that calls
// `setImmediate` during such a wait is delayed by at most a millisecond.
const SPIN_MS = 1;
const POLL_MS = 1;

let pending = 0;
let since = 0;
let original: typeof setImmediate | null = null;

function paced(fn: (...args: unknown[]) => void, ...args: unknown[]): unknown {
  if (performance.now() - since < SPIN_MS) return original!(fn, ...args);
  return setTimeout(fn, POLL_MS, ...args);
}

/** Awaits a GPU promise with Dawn's polling paced (see the module comment); concurrent waits share one patch. */
export async function awaitGpu<T>(p: Promise<T>): Promise<T> {
  if (pending++ === 0) {
    since = performance.now();
    original = globalThis.setImmediate;
    globalThis.setImmediate = paced as unknown as typeof setImmediate;
  }
  try {
    return await p;
  } finally {
    if (--pending === 0) {
      globalThis.setImmediate = original!;
      original = null;
    }
  }
}

/** Whether a paced wait is in progress (for tests). */
export function gpuWaitPending(): boolean {
  return pending > 0;
}
