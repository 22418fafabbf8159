// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_:
// total = ‖(‖g₁‖, ‖g₂‖, …)‖₂ over every gradient, coef = maxNorm/(total + 1e-6)
// clamped to at most 1, and every gradient multiplied by coef (always, as
// torch does, so coef = 1 leaves them unchanged).
//
// The kernels (one reduction over all gradients, then an in-place scale,
// without a host round trip) are in src/kernels/clip.ts.
// The norm comes back as a scalar tensor the caller may read (for logging)
// whenever it likes.
import { fail } from "../kernels/check.js";
import { l2Norm, scaleToNorm } from "../kernels/clip.js";
import { Tensor, shapeStr } from "../tensor/tensor.js";

type GradLike = Tensor | { name?: string; grad: Tensor | null };

function gradsOf(op: string, items: readonly GradLike[]): Tensor[] {
  const out: Tensor[] = [];
  items.forEach((it, k) => {
    const g = it instanceof Tensor ? it : it.grad;
    if (!g) return;
    const name = it instanceof Tensor ? `#${k}` : (it.name ?? `#${k}`);
    g.assertAlive(`${op} (grad ${name})`);
    if (g.dtype !== "f32") fail(op, `grad ${name} ${shapeStr(g.shape)} is ${g.dtype}, expected f32`);
    out.push(g);
  });
  return out;
}

/** The global L2 norm of the gradients (null grads skipped), as a scalar tensor [] on the GPU. */
export function gradNorm(items: readonly GradLike[]): Tensor {
  return l2Norm(gradsOf("gradNorm", items));
}

/**
 * Clips the gradients in place to a global L2 norm of at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_ with norm_type 2); returns the norm before
 * clipping as a scalar tensor (the caller owns it).
 */
export function clipGradNorm(items: readonly GradLike[], maxNorm: number): Tensor {
  const op = "clipGradNorm";
  if (!(Number.isFinite(maxNorm) && maxNorm > 0)) fail(op, `maxNorm must be a finite number > 0, got ${maxNorm}`);
  const norm = gradNorm(items);
  scaleToNorm(gradsOf(op, items), norm, maxNorm);
  return norm;
}
