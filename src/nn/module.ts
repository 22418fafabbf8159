// Modules and their parameters, PyTorch's way: a module declares its
// parameters (name and shape) and child modules when it is built, so one
// tree gives the checkpoint's names, shapes and state-dict order, and the
// same `forward` code runs inference (under `noGrad`) and training (on the
// tape). Values are bound after construction, from a weights file or from
// tensors in hand, as trainable `param`s or frozen `constant`s.
import type { Var } from "../autograd/autograd.js";
import { shapeStr } from "../tensor/tensor.js";

/** A parameter slot: its shape, fixed by the module, and its value once bound. */
export class Parameter {
  private value: Var | null = null;
  private source: (() => Var) | null = null;

  constructor(readonly shape: readonly number[]) {}

  /** Binds the value now. */
  set(v: Var): void {
    this.checkShape(v.shape);
    this.value = v;
    this.source = null;
  }

  /** Binds a value made on first use (weights that a forward never reads are never uploaded). */
  setLazy(make: () => Var): void {
    this.value = null;
    this.source = make;
  }

  get isBound(): boolean {
    return this.value !== null || this.source !== null;
  }

  /** Whether the value exists (a lazy one is made on first `v`). */
  get isLoaded(): boolean {
    return this.value !== null;
  }

  /** The value (made now if it was bound lazily). */
  get v(): Var {
    if (!this.value) {
      if (!this.source) throw new Error(`parameter ${shapeStr(this.shape)} is not bound to a value`);
      const v = this.source();
      this.checkShape(v.shape);
      this.value = v;
      this.source = null;
    }
    return this.value;
  }

  /** Frees the value (if made) and unbinds. */
  dispose(): void {
    this.value?.dispose();
    this.value = null;
    this.source = null;
  }

  private checkShape(shape: readonly number[]): void {
    if (shape.length !== this.shape.length || shape.some((d, i) => d !== this.shape[i])) {
      throw new Error(`parameter value ${shapeStr(shape)} does not match its declared shape ${shapeStr(this.shape)}`);
    }
  }
}

/**
 * A node of the network. Subclasses register parameters and children in
 * their constructor, in the order PyTorch's `state_dict()` lists them (a
 * name may contain dots, e.g. "patch_embeddings.1", where the upstream
 * module has a container level that holds nothing else).
 */
export abstract class Module {
  private readonly entries: [string, Parameter | Module][] = [];

  protected param(name: string, shape: readonly number[]): Parameter {
    const p = new Parameter(shape);
    this.register(name, p);
    return p;
  }

  protected child<M extends Module>(name: string, m: M): M {
    this.register(name, m);
    return m;
  }

  private register(name: string, entry: Parameter | Module): void {
    if (name === "" || this.entries.some(([n]) => n === name)) throw new Error(`module: duplicate or empty name "${name}"`);
    this.entries.push([name, entry]);
  }

  /** Every parameter under this module with its full name, in registration (state-dict) order. */
  namedParameters(prefix = ""): [string, Parameter][] {
    const out: [string, Parameter][] = [];
    for (const [name, e] of this.entries) {
      const full = prefix ? `${prefix}.${name}` : name;
      if (e instanceof Parameter) out.push([full, e]);
      else out.push(...e.namedParameters(full));
    }
    return out;
  }

  /** Names and shapes of every parameter, in state-dict order. */
  parameterShapes(): Map<string, number[]> {
    return new Map(this.namedParameters().map(([n, p]) => [n, [...p.shape]]));
  }

  /** Frees every bound parameter value under this module. */
  disposeParameters(): void {
    for (const [, p] of this.namedParameters()) p.dispose();
  }
}

/**
 * Runs `step` for each layer in order, threading a state (one Var or a
 * tuple), and frees each intermediate state once the next layer has made
 * its own: a deep stack then holds one activation at a time, with and
 * without a tape. Recorded values belong to the tape (backward frees them)
 * and the initial state to the caller, so neither is touched here.
 */
export function sequence<L, S extends Var | readonly Var[]>(init: S, layers: readonly L[], step: (layer: L, state: S) => S): S {
  const owned = (s: S): Var[] => (Array.isArray(s) ? [...(s as readonly Var[])] : [s as Var]);
  const initial = new Set(owned(init));
  let state = init;
  for (const layer of layers) {
    const next = step(layer, state);
    const kept = new Set(owned(next));
    for (const v of owned(state)) if (!initial.has(v) && !kept.has(v) && !v.onTape) v.dispose();
    state = next;
  }
  return state;
}
