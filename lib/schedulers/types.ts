/** What every scheduler offers the sampling loop, and the options of a step. */
import type { Generator } from '../random.js';
import type { Tensor } from '../tensor.js';

export interface StepOptions {
  /** The noise this step adds (replay), shaped like the sample. */
  noise?: Tensor;
  /** Or the Generator whose next draw supplies it (default: a randomly seeded one). */
  generator?: Generator;
  /**
   * Classifier-free guidance weight w: the model output then holds 2·B images, the
   * unconditional half first, and the step uses ε = ε_u + w·(ε_c − ε_u).
   */
  guidanceScale?: number;
}

export interface SchedulerOutput {
  /** x_{t−1}: the sample after the step. */
  prevSample: Tensor;
  /** x̂_0, the clean sample predicted at this step (after clipping/thresholding), where the scheduler has one. */
  predOriginalSample: Tensor | null;
}

export interface Scheduler {
  /** diffusers' class name, e.g. "DDIMScheduler". */
  readonly className: string;
  readonly config: Readonly<Record<string, unknown>>;
  /** The timesteps of the current schedule, in the order the loop visits them (what the model is given). */
  readonly timesteps: readonly number[];
  /** Standard deviation of the initial noise: x_T = initNoiseSigma · N(0, I). */
  readonly initNoiseSigma: number;
  setTimesteps(numInferenceSteps: number): void;
  /** The model input for the sample at timestep t (identity for DDPM/DDIM). */
  scaleModelInput(sample: Tensor, t: number): Promise<Tensor>;
  step(modelOutput: Tensor, t: number, sample: Tensor, options?: StepOptions): Promise<SchedulerOutput>;
  /** The forward process to timestep t (img2img starts there). */
  addNoise(original: Tensor, noise: Tensor, t: number | readonly number[]): Promise<Tensor>;
  /**
   * True when the step's predOriginalSample is kept by the scheduler for its next step
   * (multistep solvers): the caller must not dispose it.
   */
  readonly retainsPredOriginal?: boolean;
  /** Starts the step counter at `index` (schedulers that count steps), for starting late. */
  setBeginIndex?(index: number): void;
  /** Releases tensors the scheduler keeps between steps. */
  reset?(): void;
}
