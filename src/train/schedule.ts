// Learning-rate schedule: linear warm-up, then cosine decay to a floor, as a
// pure function of the step, so a resumed run needs no scheduler state.
//
// Step s counts optimiser updates from 0. Warm-up (s < warmupSteps) ramps
// linearly and never gives 0: lr = base·(s+1)/warmupSteps, reaching `base`
// on the last warm-up step (torch's LinearLR with start_factor 1/warmupSteps
// over warmupSteps−1 iterations). Then cosine annealing over the remaining
// totalSteps − warmupSteps steps: lr = floor + (base − floor)·(1 + cos(π·t))/2
// with t = (s − warmupSteps)/(totalSteps − warmupSteps), clamped to [0, 1]
// (torch's CosineAnnealingLR with T_max = totalSteps − warmupSteps and
// eta_min = floor); after totalSteps it stays at the floor.

export interface ScheduleOptions {
  /** Peak learning rate. */
  baseLr: number;
  /** Steps of linear warm-up (0: start at baseLr). */
  warmupSteps: number;
  /** Step at which the cosine reaches the floor. */
  totalSteps: number;
  /** Final learning rate (default 0). */
  minLr?: number;
}

export function checkSchedule(o: ScheduleOptions): void {
  const bad = (what: string) => {
    throw new Error(`lr schedule: ${what} (baseLr ${o.baseLr}, warmupSteps ${o.warmupSteps}, totalSteps ${o.totalSteps}, minLr ${o.minLr ?? 0})`);
  };
  if (!(Number.isFinite(o.baseLr) && o.baseLr >= 0)) bad("baseLr must be a finite number ≥ 0");
  if (!(Number.isInteger(o.warmupSteps) && o.warmupSteps >= 0)) bad("warmupSteps must be an integer ≥ 0");
  if (!(Number.isInteger(o.totalSteps) && o.totalSteps >= o.warmupSteps)) bad("totalSteps must be an integer ≥ warmupSteps");
  const floor = o.minLr ?? 0;
  if (!(Number.isFinite(floor) && floor >= 0 && floor <= o.baseLr)) bad("minLr must be in [0, baseLr]");
}

/** The learning rate for optimiser step `step` (0-based). */
export function learningRate(step: number, o: ScheduleOptions): number {
  checkSchedule(o);
  if (!(Number.isInteger(step) && step >= 0)) throw new Error(`lr schedule: step must be an integer ≥ 0, got ${step}`);
  const floor = o.minLr ?? 0;
  if (step < o.warmupSteps) return (o.baseLr * (step + 1)) / o.warmupSteps;
  const span = o.totalSteps - o.warmupSteps;
  const t = span === 0 ? 1 : Math.min(1, (step - o.warmupSteps) / span);
  return floor + ((o.baseLr - floor) * (1 + Math.cos(Math.PI * t))) / 2;
}
