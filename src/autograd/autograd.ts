// Reverse-mode automatic differentiation over GPU tensors.
//
// Ops on `Var`s (src/autograd/ops.ts) run the forward kernel and, while
// recording, attach a `GradNode` to their result: the inputs, a backward
// closure and the tensors it saved. `backward(loss)` walks the nodes in
// reverse topological order, runs each closure once the gradient of its
// output is complete, and sums the gradients of shared inputs on the GPU.
//
// Memory ownership (all by explicit disposal, no GC):
//  - A Var owns its `value` and `grad`. Leaves made by `param` / `constant`
//    wrap a tensor the caller made; `Var.dispose()` frees it.
//  - Values of recorded op results (recording, and some input requires
//    grad) belong to the tape: they are exempt from `scope()` and freed by
//    `backward` as soon as the walk has passed them (except the loss and
//    Vars marked with `retain()`), or by `dispose()` on the graph's root if
//    backward never runs. Every other op result (under `noGrad`, or with no
//    input requiring grad: a frozen part of a network) is an ordinary tensor
//    of the enclosing scope, so one rule frees forward intermediates with
//    and without a tape: module calls run in `scoped`.
//  - A node saves its own handles (`reshape` views share the storage), so
//    freeing a Var's value never breaks a backward that still needs it; the
//    storage returns to the pool when the last handle goes. Each node's
//    saved handles are freed right after its backward ran.
//  - Under `noGrad`, nothing is recorded and `noGrad` acts as a scope: every
//    tensor (op results included) made inside is freed when it returns,
//    except those reachable from its result.
import { addN } from "../kernels/add_n.js";
import { add } from "../kernels/elementwise.js";
import { keep, scope } from "../tensor/scope.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";

export interface GradNode {
  readonly op: string;
  readonly inputs: readonly Var[];
  /** Gradients w.r.t. each input (null: none), as new tensors the caller owns. */
  backward(gradOut: Tensor): (Tensor | null)[];
  /** Frees the saved tensors; a later backward through this node throws. */
  release(): void;
  readonly released: boolean;
}

export type BackwardFn = (gradOut: Tensor) => (Tensor | null)[];

let noGradDepth = 0;

function freedError(op: string): Error {
  return new Error(`backward: the graph through '${op}' was already freed (backward ran through it before, or a Var above it was disposed)`);
}

/** Whether ops currently record a tape (false inside `noGrad`). */
export function isRecording(): boolean {
  return noGradDepth === 0;
}

class Node implements GradNode {
  private fn: BackwardFn | null;
  private saved: Tensor[];

  constructor(
    readonly op: string,
    readonly inputs: readonly Var[],
    fn: BackwardFn,
    saved: Tensor[],
  ) {
    this.fn = fn;
    this.saved = saved;
  }

  get released(): boolean {
    return this.fn === null;
  }

  /** Whether t is one of this node's saved handles (freed by release). */
  isSaved(t: Tensor): boolean {
    return this.saved.includes(t);
  }

  backward(gradOut: Tensor): (Tensor | null)[] {
    if (!this.fn) throw freedError(this.op);
    return this.fn(gradOut);
  }

  release(): void {
    for (const t of this.saved) t.dispose();
    this.saved = [];
    this.fn = null;
  }
}

export class Var {
  readonly value: Tensor;
  grad: Tensor | null = null;
  readonly requiresGrad: boolean;
  readonly node: GradNode | null;
  /** Made by a recorded op (some input requires grad): the tape frees its value (see file header). */
  readonly onTape: boolean;
  private retained = false;

  /** Use `param`, `constant` or the ops; this constructor is for the tape. */
  constructor(value: Tensor, requiresGrad: boolean, node: GradNode | null, onTape: boolean) {
    this.value = value;
    this.requiresGrad = requiresGrad;
    this.node = node;
    this.onTape = onTape;
  }

  get shape(): readonly number[] {
    return this.value.shape;
  }

  get isRetained(): boolean {
    return this.retained;
  }

  /**
   * Keeps this intermediate's value through `backward` (which would free it)
   * and stores its gradient in `grad`; dispose it yourself afterwards.
   */
  retain(): this {
    this.retained = true;
    return this;
  }

  /**
   * Frees the value and gradient. On an op result this also frees the part
   * of its graph that backward has not consumed yet (saved tensors and
   * tape-owned values below it); leaves below are untouched.
   */
  dispose(): void {
    this.value.dispose();
    this.grad?.dispose();
    this.grad = null;
    if (this.node && !this.node.released) releaseGraph(this);
  }

  toString(): string {
    return `Var(${shapeStr(this.shape)}${this.requiresGrad ? ", requiresGrad" : ""}${this.node ? `, ${this.node.op}` : ""})`;
  }
}

/** A trainable leaf: gradients accumulate into `.grad` across backward calls. */
export function param(t: Tensor): Var {
  t.assertAlive("param");
  return new Var(t, true, null, false);
}

/** A leaf without gradient (data, labels, frozen weights). */
export function constant(t: Tensor): Var {
  t.assertAlive("constant");
  return new Var(t, false, null, false);
}

/** A constant sharing v's value (its own handle): gradients stop here. */
export function detach(v: Var): Var {
  v.value.assertAlive("detach");
  return new Var(v.value.reshape(v.shape), false, null, false);
}

function tensorsIn(value: unknown, out: Tensor[], depth = 0): void {
  if (value === null || typeof value !== "object" || depth > 4) return;
  if (value instanceof Var) {
    out.push(value.value);
    if (value.grad) out.push(value.grad);
  } else if (value instanceof Tensor) {
    out.push(value);
  } else if (Array.isArray(value)) {
    for (const v of value) tensorsIn(v, out, depth + 1);
  } else if (value instanceof Map) {
    for (const v of value.values()) tensorsIn(v, out, depth + 1);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) tensorsIn(v, out, depth + 1);
  }
}

/**
 * Runs fn in a tensor scope that keeps what its result reaches (Vars,
 * tensors, arrays, plain objects): every other tensor made inside and not
 * owned by the tape is freed when fn returns. Module calls run in one, so
 * forward code frees its intermediates without a `dispose()` by hand.
 */
export function scoped<T>(fn: () => T): T {
  return scope(() => {
    const result = fn();
    const keepList: Tensor[] = [];
    tensorsIn(result, keepList);
    return { result, keepList };
  }).result;
}

/**
 * Runs fn without recording: ops return constants, with no saved tensors
 * and no extra work. Acts as `scoped`: tensors made inside are freed when
 * fn returns, except those in its result (Vars, tensors, arrays, objects).
 */
export function noGrad<T>(fn: () => T): T {
  noGradDepth++;
  try {
    return scoped(fn);
  } finally {
    noGradDepth--;
  }
}

/**
 * Records an op whose forward result `out` was computed by the caller.
 * `backward(g)` returns the gradient of each input (null where there is
 * none; tensors it returns are owned by the driver, temporaries it makes are
 * freed). `saved` tensors are owned by the node and freed after its backward
 * ran; pass views (`t.reshape(t.shape)`) of tensors that you keep yourself.
 * Without recording, or when no input requires grad, the saved tensors are
 * freed at once and a constant is returned.
 */
export function customOp(op: string, inputs: Var[], out: Tensor, backward: BackwardFn, saved: Tensor[] = []): Var {
  for (const v of inputs) {
    if (!(v instanceof Var)) throw new Error(`${op}: inputs must be Vars (wrap tensors with param() or constant())`);
  }
  if (!isRecording()) {
    for (const t of saved) t.dispose();
    return new Var(out, false, null, false);
  }
  if (!inputs.some((v) => v.requiresGrad)) {
    for (const t of saved) t.dispose();
    return new Var(out, false, null, false);
  }
  keep(out);
  for (const t of saved) keep(t);
  return new Var(out, true, new Node(op, inputs, backward, saved), true);
}

/** Vars with a live node reachable from root, inputs before their consumers. */
function topoOrder(root: Var): Var[] {
  const order: Var[] = [];
  const state = new Map<Var, number>(); // 1: on the stack, 2: done
  const stack: [Var, number][] = [[root, 0]];
  state.set(root, 1);
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const [v, i] = top;
    const node = v.node!;
    if (node.released) throw freedError(node.op);
    if (i < node.inputs.length) {
      top[1] = i + 1;
      const u = node.inputs[i]!;
      if (u.node && u.requiresGrad && !state.has(u)) {
        state.set(u, 1);
        stack.push([u, 0]);
      }
    } else {
      state.set(v, 2);
      order.push(v);
      stack.pop();
    }
  }
  return order;
}

/** Adds g into a gradient slot (on the GPU), taking ownership of g. */
function accumulate(prev: Tensor | null | undefined, g: Tensor): Tensor {
  if (!prev) return keep(g);
  const sum = keep(add(prev, g));
  prev.dispose();
  g.dispose();
  return sum;
}

/**
 * Gradient contributions waiting to be summed, per Var: a Var used k times
 * gets k of them, and one addN pass (left to right, so the same bits as
 * pairwise adds) costs one dispatch instead of k − 1. A list is folded early
 * when it reaches FOLD_AT, which bounds the memory it holds.
 */
const FOLD_AT = 8;

function pend(pending: Map<Var, Tensor[]>, v: Var, g: Tensor): void {
  let list = pending.get(v);
  if (!list) pending.set(v, (list = []));
  list.push(keep(g));
  if (list.length >= FOLD_AT) pending.set(v, [sumOf(list)]);
}

/** The sum of a pending list (taking ownership of its tensors). */
function sumOf(list: Tensor[]): Tensor {
  if (list.length === 1) return list[0]!;
  const sum = keep(addN(list));
  for (const t of list) t.dispose();
  return sum;
}

/** Frees a tape-owned value once nothing in the walk needs its handle. */
function freeTapeValue(v: Var): void {
  if (v.onTape && !v.isRetained) v.value.dispose();
}

/**
 * Backpropagates from `loss` (gradOut defaults to ones; required when the
 * loss has more than one element). Parameter gradients accumulate into
 * `.grad`; the graph is consumed: nodes and intermediate values are freed
 * as the walk passes them. The loss keeps its value (dispose it yourself).
 */
export function backward(loss: Var, gradOut?: Tensor): void {
  if (!(loss instanceof Var)) throw new Error("backward: loss must be a Var");
  if (!loss.requiresGrad || !loss.node) {
    throw new Error(`backward: loss ${shapeStr(loss.shape)} does not require grad (no param reaches it, or it was computed under noGrad)`);
  }
  const order = topoOrder(loss);
  let seed: Tensor;
  if (gradOut) {
    gradOut.assertAlive("backward");
    if (gradOut.dtype !== "f32" || gradOut.shape.length !== loss.shape.length || gradOut.shape.some((d, a) => d !== loss.shape[a])) {
      throw new Error(`backward: gradOut ${shapeStr(gradOut.shape)} ${gradOut.dtype} must be f32 of the loss's shape ${shapeStr(loss.shape)}`);
    }
    seed = keep(gradOut.reshape(gradOut.shape));
  } else {
    if (loss.value.size !== 1) {
      throw new Error(`backward: loss ${shapeStr(loss.shape)} has ${loss.value.size} elements; pass gradOut (or reduce it to one element)`);
    }
    seed = keep(Tensor.from(new Float32Array([1]), loss.shape));
  }
  // Pending gradients of tape values (summed when their node runs) and of
  // leaves (summed into .grad at the end, after any earlier .grad).
  const grads = new Map<Var, Tensor[]>([[loss, [seed]]]);
  const leaves = new Map<Var, Tensor[]>();
  try {
    for (let k = order.length - 1; k >= 0; k--) step(order[k]!, loss, grads, leaves);
    for (const [u, list] of leaves) {
      leaves.delete(u);
      u.grad = sumOf(u.grad ? [u.grad, ...list] : list);
    }
  } finally {
    // Normally empty; after an error in a node, frees the pending gradients.
    for (const list of [...grads.values(), ...leaves.values()]) for (const g of list) g.dispose();
  }
}

/** Backpropagates through v's node once v's gradient is complete, then frees what the walk no longer needs. */
function step(v: Var, loss: Var, grads: Map<Var, Tensor[]>, leaves: Map<Var, Tensor[]>): void {
  const node = v.node as Node;
  const list = grads.get(v);
  grads.delete(v);
  const g = list ? sumOf(list) : undefined;
  try {
    if (g) {
      if (v.isRetained) v.grad = accumulate(v.grad, keep(g.reshape(g.shape)));
      const ins = runNode(node, g);
      node.inputs.forEach((u, i) => {
        const gi = ins[i];
        if (!gi) return;
        if (!u.requiresGrad) gi.dispose();
        else pend(u.node ? grads : leaves, u, gi);
      });
    }
  } finally {
    g?.dispose();
  }
  node.release();
  if (v !== loss) freeTapeValue(v);
  for (const u of node.inputs) if (!u.node) freeTapeValue(u);
}

/** Runs one node's backward inside a scope and checks what it returned. */
function runNode(node: Node, g: Tensor): (Tensor | null)[] {
  const out = scope(() => node.backward(g));
  if (!Array.isArray(out) || out.length !== node.inputs.length) {
    throw new Error(`backward: node '${node.op}' returned ${Array.isArray(out) ? out.length : typeof out} gradients for ${node.inputs.length} inputs`);
  }
  const bad = out.findIndex((t, i) => {
    if (t === null || t === undefined) return false;
    const u = node.inputs[i]!;
    return !(t instanceof Tensor) || t.dtype !== "f32" || t.shape.length !== u.shape.length || t.shape.some((d, a) => d !== u.shape[a]);
  });
  if (bad >= 0) {
    const t = out[bad];
    for (const r of out) if (r instanceof Tensor && r !== g && !node.isSaved(r)) r.dispose();
    throw new Error(
      `backward: node '${node.op}' returned gradient ${t instanceof Tensor ? `${shapeStr(t.shape)} ${t.dtype}` : String(t)} for input ${bad} of shape ${shapeStr(node.inputs[bad]!.shape)}`,
    );
  }
  // The driver owns each returned handle: hand it a fresh view where the
  // closure passed through gradOut, a saved tensor or the same tensor twice.
  const seen = new Set<Tensor>();
  return out.map((t) => {
    if (t === null || t === undefined) return null;
    const borrowed = t === g || node.isSaved(t) || seen.has(t);
    seen.add(t);
    return keep(borrowed ? t.reshape(t.shape) : t);
  });
}

/** Frees the unconsumed graph below root: nodes' saved tensors and tape-owned values. */
function releaseGraph(root: Var): void {
  const stack: Var[] = [root];
  const seen = new Set<Var>([root]);
  while (stack.length > 0) {
    const v = stack.pop()!;
    const node = v.node;
    if (!node || node.released) continue;
    node.release();
    for (const u of node.inputs) {
      if (seen.has(u)) continue;
      seen.add(u);
      freeTapeValue(u);
      stack.push(u);
    }
  }
}

/** Clears the gradients of the given leaves. */
export function zeroGrad(vars: Iterable<Var>): void {
  for (const v of vars) {
    v.grad?.dispose();
    v.grad = null;
  }
}
