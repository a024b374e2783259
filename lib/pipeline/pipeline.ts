/**
 * loadPipeline(dir): a diffusers pipeline folder — model_index.json naming the `unet` and
 * `scheduler` subfolders, or a model folder with config.json and scheduler_config.json side
 * by side — as a ready-to-run image generator. The scheduler class comes from
 * scheduler_config.json's `_class_name` and sets the default sampler; any other
 * sampler is built from the same config (diffusers' from_config: the keys it knows).
 *
 * Samplers: 'ddpm' | 'ddim' | 'euler' | 'euler-ancestral' | 'dpm++2m' (discrete-time ε/v
 * models), 'consistency' (consistency models), 'sde-vp' (reverse VP SDE, Euler–Maruyama),
 * 'pf-ode' (probability-flow ODE, Heun), 'pc' (predictor–corrector) for ε-models with a
 * linear β schedule (VP SDE with β_min = T·beta_start, β_max = T·beta_end) and for
 * score-SDE VE models, and 'sde-ve' (diffusers' ScoreSdeVePipeline algorithm).
 *
 * Seeds: image i uses seeds[i] (or seed + i); every draw of its noise is a pure function of
 * that seed, so image i is reproduced exactly by generating it alone with its seed.
 *
 * A pipeline folder may describe its model for fusediff (model_card.ts): class names, the
 * null class and default guidance scale, the default sampler and steps. loadPipeline() with
 * no folder loads the embedded model (embedded.ts), which carries such a card.
 */
import { locateModel } from '../checkpoint/layout.js';
import { FusediffError } from '../errors.js';
import { Generator, checkSeed, randomSeed } from '../random.js';
import { checkGuidance, evaluate, throwIfAborted, type GuidanceOptions, type ModelFn } from '../sampling/model.js';
import { checkShape, initialNoise, sampleLoop, type PreviewOptions, type Progress } from '../sampling/loop.js';
import { sampleSde } from '../sampling/sde.js';
import { VESDE, VPSDE } from '../schedules/sde.js';
import { schedulerFromConfig, type AnyScheduler, type SchedulerClassName } from '../schedulers/index.js';
import { ScoreSdeVeScheduler } from '../schedulers/score_sde_ve.js';
import type { Scheduler } from '../schedulers/types.js';
import type { Tensor } from '../tensor.js';
import { loadUNet, readJsonFile, type LoadUNetOptions } from '../unet/load.js';
import type { UNet } from '../unet/unet.js';
import { embeddedModelDir } from './embedded.js';
import { fromImages, toImages, type GeneratedImage, type SampleRange } from './images.js';
import { parseModelCard, resolveClassLabels, type ModelCard } from './model_card.js';

export type SamplerName =
  | 'ddpm'
  | 'ddim'
  | 'euler'
  | 'euler-ancestral'
  | 'dpm++2m'
  | 'consistency'
  | 'sde-vp'
  | 'pf-ode'
  | 'pc'
  | 'sde-ve';

export const SAMPLERS: readonly SamplerName[] = ['ddpm', 'ddim', 'euler', 'euler-ancestral', 'dpm++2m', 'consistency', 'sde-vp', 'pf-ode', 'pc', 'sde-ve'];

const DISCRETE: Partial<Record<SamplerName, SchedulerClassName>> = {
  ddpm: 'DDPMScheduler',
  ddim: 'DDIMScheduler',
  euler: 'EulerDiscreteScheduler',
  'euler-ancestral': 'EulerAncestralDiscreteScheduler',
  'dpm++2m': 'DPMSolverMultistepScheduler',
  consistency: 'CMStochasticIterativeScheduler',
};

const DEFAULT_SAMPLER: Record<SchedulerClassName, SamplerName> = {
  DDPMScheduler: 'ddpm',
  DDIMScheduler: 'ddim',
  EulerDiscreteScheduler: 'euler',
  EulerAncestralDiscreteScheduler: 'euler-ancestral',
  DPMSolverMultistepScheduler: 'dpm++2m',
  CMStochasticIterativeScheduler: 'consistency',
  ScoreSdeVeScheduler: 'sde-ve',
  ScoreSdeVpScheduler: 'sde-vp',
};

/** Steps when `steps` is not given (diffusers' pipeline defaults where there is one). */
const DEFAULT_STEPS: Record<SamplerName, number> = {
  ddpm: 1000,
  ddim: 50,
  euler: 50,
  'euler-ancestral': 50,
  'dpm++2m': 25,
  consistency: 1,
  'sde-vp': 1000,
  'pf-ode': 100,
  pc: 1000,
  'sde-ve': 2000,
};

export interface GenerateOptions extends Omit<GuidanceOptions, 'classLabels'> {
  /** Images to make (default: the number of seeds or class labels, else 1). */
  batchSize?: number;
  steps?: number;
  /** One seed: image i uses seed + i. */
  seed?: number;
  /** One seed per image. */
  seeds?: readonly number[];
  /**
   * One class for all images or one per image (class-conditional models): ids, or names
   * where the model card lists class names (e.g. the embedded model's 'wall'). Left out on a
   * model whose card names a null class: unconditional images.
   */
  classLabels?: readonly (number | string)[] | number | string;
  sampler?: SamplerName;
  /** DDIM's η (default 0). */
  eta?: number;
  /** Consistency models: explicit timesteps, e.g. [22, 0]. */
  timesteps?: readonly number[];
  /** Image size (default: the model's sample_size). */
  height?: number;
  width?: number;
  /** Output channels (3 = RGB, 4 = RGBA; default 3, or 4 for 4-channel models). */
  channels?: 3 | 4;
  /** Start late from these images (img2img / SDEdit) with this strength in (0, 1]. */
  init?: { images: readonly GeneratedImage[] | Tensor; strength: number };
  /** Truncated sampling: run this many steps and return the predicted clean images. */
  stopAfter?: number;
  /** Pad every convolution circularly so the images tile seamlessly (textures, floors, walls). */
  tileable?: boolean;
  /** Rejects with E_ABORTED before the next step once aborted; the run's native memory is freed. */
  signal?: AbortSignal;
  /** Called after every step with { step, totalSteps, timestep, stepMs, elapsedMs, preview? }. */
  onProgress?: (p: Progress) => void;
  /**
   * Give onProgress a `preview` (the predicted clean images, like `images`) every this many
   * steps and at the last step. Not available for the sde-ve sampler.
   */
  previewEvery?: number;
}

export interface GenerateResult {
  images: GeneratedImage[];
  seeds: number[];
  sampler: SamplerName;
  /** Steps run (fewer than asked with `init` or `stopAfter`). */
  steps: number;
  /** The classifier-free guidance scale used (given, or the model card's default; 1 = none); absent: none asked. */
  guidanceScale?: number;
  timings: { steps: number[]; totalMs: number };
}

export class Pipeline {
  readonly unet: UNet;
  /** The pipeline's scheduler config (scheduler/scheduler_config.json). */
  readonly schedulerConfig: Readonly<Record<string, unknown>>;
  readonly schedulerClass: SchedulerClassName;
  readonly defaultSampler: SamplerName;
  readonly dir: string;
  /** What model_index.json's `_fusediff` block says about the model ({} if nothing). */
  readonly card: Readonly<ModelCard>;

  /** @internal Use loadPipeline(). */
  constructor(dir: string, unet: UNet, schedulerConfig: Record<string, unknown>, card: ModelCard = {}) {
    this.dir = dir;
    this.unet = unet;
    this.card = Object.freeze({ ...card });
    this.schedulerConfig = Object.freeze({ ...schedulerConfig });
    // Validates the config (and its class) up front.
    const s = schedulerFromConfig(schedulerConfig);
    this.schedulerClass = s.className as SchedulerClassName;
    this.defaultSampler = DEFAULT_SAMPLER[this.schedulerClass];
    if (card.defaultSampler !== undefined) {
      if (!SAMPLERS.includes(card.defaultSampler as SamplerName) || !this.samplers.includes(card.defaultSampler as SamplerName))
        throw new FusediffError('E_CONFIG', `${dir}: _fusediff.default_sampler "${card.defaultSampler}" is not a sampler this model can run (${this.samplers.join(', ')})`);
      this.defaultSampler = card.defaultSampler as SamplerName;
    }
  }

  private isVe(): boolean {
    return this.schedulerClass === 'ScoreSdeVeScheduler';
  }

  private scheduler(name: SamplerName): AnyScheduler {
    const className = DISCRETE[name]!;
    if (name === 'consistency' && this.schedulerClass !== 'CMStochasticIterativeScheduler')
      throw new FusediffError('E_ARGUMENT', `the consistency sampler needs a consistency model; this pipeline's scheduler is ${this.schedulerClass}`);
    if (name !== 'consistency' && (this.schedulerClass === 'CMStochasticIterativeScheduler' || this.isVe() || this.schedulerClass === 'ScoreSdeVpScheduler'))
      throw new FusediffError('E_ARGUMENT', `sampler "${name}" needs a discrete-time diffusion model; this pipeline's scheduler is ${this.schedulerClass}`);
    return schedulerFromConfig({ ...this.schedulerConfig }, className);
  }

  /** The VP SDE matching a discrete linear-β ε-model, or the VE SDE of a score-SDE pipeline. */
  private sde(): { sde: VPSDE | VESDE; numTrainTimesteps: number } {
    const c = this.schedulerConfig;
    if (this.isVe()) {
      const s = new ScoreSdeVeScheduler(c as Record<string, unknown>);
      return { sde: new VESDE({ sigmaMin: s.config.sigma_min, sigmaMax: s.config.sigma_max }), numTrainTimesteps: s.config.num_train_timesteps };
    }
    if (this.schedulerClass === 'ScoreSdeVpScheduler') {
      return { sde: new VPSDE({ betaMin: c.beta_min as number, betaMax: c.beta_max as number }), numTrainTimesteps: 1000 };
    }
    if (this.schedulerClass === 'CMStochasticIterativeScheduler')
      throw new FusediffError('E_ARGUMENT', 'SDE samplers need a diffusion model; this pipeline is a consistency model');
    const T = (c.num_train_timesteps as number | undefined) ?? 1000;
    if ((c.beta_schedule ?? 'linear') !== 'linear' || c.trained_betas)
      throw new FusediffError('E_UNSUPPORTED', `SDE samplers need a linear beta schedule (the VP SDE), not "${String(c.beta_schedule)}"`);
    if ((c.prediction_type ?? 'epsilon') !== 'epsilon')
      throw new FusediffError('E_UNSUPPORTED', 'SDE samplers need an epsilon-prediction model');
    const bs = (c.beta_start as number | undefined) ?? 0.0001;
    const be = (c.beta_end as number | undefined) ?? 0.02;
    return { sde: new VPSDE({ betaMin: bs * T, betaMax: be * T }), numTrainTimesteps: T };
  }

  /** The samplers this pipeline's model can run (the others are refused with E_ARGUMENT or E_UNSUPPORTED). */
  get samplers(): SamplerName[] {
    return SAMPLERS.filter((name) => {
      try {
        if (DISCRETE[name]) this.scheduler(name);
        else if (name === 'sde-ve') return this.isVe();
        else if (this.sde().sde instanceof VESDE && name === 'sde-vp') return false;
        return true;
      } catch {
        return false;
      }
    });
  }

  async generate(options: GenerateOptions = {}): Promise<GenerateResult> {
    const started = performance.now();
    const o = options;
    if (!this.unet.handle) throw new FusediffError('E_DISPOSED', 'this pipeline has been disposed');
    throwIfAborted(o.signal);
    const sampler = o.sampler ?? this.defaultSampler;
    if (!SAMPLERS.includes(sampler)) throw new FusediffError('E_ARGUMENT', `unknown sampler "${String(sampler)}" (use ${SAMPLERS.join(', ')})`);
    // Batch, seeds and labels.
    const single = typeof o.classLabels === 'number' || typeof o.classLabels === 'string';
    const labelList = single ? undefined : o.classLabels ? resolveClassLabels(o.classLabels as readonly (number | string)[], this.card) : undefined;
    const batch = o.batchSize ?? o.seeds?.length ?? labelList?.length ?? 1;
    if (!Number.isInteger(batch) || batch < 1 || batch > 4096) throw new FusediffError('E_ARGUMENT', `batchSize must be an integer in [1, 4096], got ${String(batch)}`);
    if (o.seed !== undefined && o.seeds !== undefined) throw new FusediffError('E_ARGUMENT', 'give seed or seeds, not both');
    let seeds: number[];
    if (o.seeds !== undefined) {
      if (o.seeds.length !== batch) throw new FusediffError('E_SHAPE', `got ${o.seeds.length} seeds for a batch of ${batch}`);
      seeds = o.seeds.map((s, i) => checkSeed(s, `seeds[${i}]`));
    } else {
      const base = o.seed !== undefined ? checkSeed(o.seed) : randomSeed();
      seeds = Array.from({ length: batch }, (_, i) => checkSeed(base + i, 'seed + image index'));
    }
    const given = single ? new Array<number>(batch).fill(resolveClassLabels([o.classLabels as number | string], this.card)[0]) : labelList;
    // A model whose card names a null class generates unconditionally when no class is given.
    const classLabels = given ?? (this.card.nullClassLabel !== undefined ? new Array<number>(batch).fill(this.card.nullClassLabel) : undefined);
    const cfg = this.unet.config;
    if (classLabels && cfg.num_class_embeds === null && cfg.class_embed_type === null)
      throw new FusediffError('E_ARGUMENT', 'this model is not class-conditional; leave classLabels out');
    const guidance: GuidanceOptions = {
      classLabels,
      guidanceScale: o.guidanceScale ?? (given ? this.card.defaultGuidanceScale : undefined),
      unconditionalClass: o.unconditionalClass ?? this.card.nullClassLabel ?? (cfg.num_class_embeds !== null ? cfg.num_class_embeds - 1 : undefined),
    };
    checkGuidance(guidance, batch);
    if (classLabels && cfg.num_class_embeds !== null)
      for (const c of [...classLabels, ...(guidance.guidanceScale !== undefined && guidance.guidanceScale !== 1 ? [guidance.unconditionalClass!] : [])])
        if (c >= cfg.num_class_embeds) throw new FusediffError('E_ARGUMENT', `class id ${c} is out of range for ${cfg.num_class_embeds} classes`);
    // Shape.
    const size = cfg.sample_size;
    const [dh, dw] = Array.isArray(size) ? size : [size, size];
    const height = o.height ?? dh;
    const width = o.width ?? dw;
    if (typeof height !== 'number' || typeof width !== 'number')
      throw new FusediffError('E_ARGUMENT', 'the model config has no sample_size: give height and width');
    const shape = checkShape([batch, cfg.in_channels, height, width]);
    const steps = o.steps ?? (sampler === this.defaultSampler ? this.card.defaultSteps : undefined) ?? DEFAULT_STEPS[sampler];
    const generator = new Generator(seeds);
    const range: SampleRange = this.isVe() ? 'zero-one' : 'minus-one-one';
    const preview: PreviewOptions | undefined =
      o.previewEvery === undefined ? undefined : { every: o.previewEvery, render: (x0) => toImages(x0, { channels: o.channels, range }) };
    if (preview && sampler === 'sde-ve') throw new FusediffError('E_UNSUPPORTED', 'previews are not available for the sde-ve sampler (use pc or pf-ode)');
    let init: { image: Tensor; strength: number } | undefined;
    if (o.init) {
      const image = Array.isArray(o.init.images) ? fromImages(o.init.images as GeneratedImage[], cfg.in_channels, range) : (o.init.images as Tensor);
      init = { image, strength: o.init.strength };
    }
    try {
      let sample: Tensor;
      let stepMs: number[];
      if (DISCRETE[sampler]) {
        const scheduler = this.scheduler(sampler);
        const r = await sampleLoop({
          ...guidance,
          model: this.model(o),
          scheduler: scheduler as Scheduler,
          steps: sampler === 'consistency' && o.timesteps ? { timesteps: o.timesteps } : steps,
          shape,
          generator,
          init,
          stopAfter: o.stopAfter,
          stepOptions: sampler === 'ddim' ? { eta: o.eta ?? 0 } : {},
          signal: o.signal,
          onProgress: o.onProgress,
          preview,
        });
        sample = r.sample;
        stepMs = r.stepMs;
      } else if (sampler === 'sde-ve') {
        if (!this.isVe()) throw new FusediffError('E_ARGUMENT', `the sde-ve sampler needs a score-SDE VE model; this pipeline's scheduler is ${this.schedulerClass}`);
        if (init || o.stopAfter !== undefined) throw new FusediffError('E_UNSUPPORTED', 'sde-ve: use the pc sampler for init images or truncation');
        ({ sample, stepMs } = await this.sdeVe(steps, shape, generator, guidance, o));
      } else {
        const { sde, numTrainTimesteps } = this.sde();
        const method = sampler === 'sde-vp' ? 'reverse-sde' : (sampler as 'pf-ode' | 'pc');
        if (sampler === 'sde-vp' && sde instanceof VESDE) throw new FusediffError('E_ARGUMENT', 'sde-vp needs a VP (epsilon) model; use pc or pf-ode for VE models');
        const snr = sde instanceof VESDE ? (this.schedulerConfig.snr as number | undefined) : undefined;
        const r = await sampleSde({
          ...guidance,
          model: this.model(o),
          sde,
          method,
          steps,
          shape,
          generator,
          numTrainTimesteps,
          snr,
          init,
          stopAfter: o.stopAfter,
          signal: o.signal,
          onProgress: o.onProgress,
          preview,
        });
        sample = r.sample;
        stepMs = r.stepMs;
      }
      try {
        const images = await toImages(sample, { channels: o.channels, range });
        const guided = guidance.guidanceScale !== undefined ? { guidanceScale: guidance.guidanceScale } : {};
        return { images, seeds, sampler, steps: stepMs.length, ...guided, timings: { steps: stepMs, totalMs: performance.now() - started } };
      } finally {
        sample.dispose();
      }
    } finally {
      if (init && init.image !== o.init?.images) init.image.dispose();
    }
  }

  /** The UNet as the samplers call it, with this generation's forward options. */
  private model(o: GenerateOptions): ModelFn {
    const tileable = o.tileable === true;
    return (x, t, labels) => this.unet.forward(x, t, { classLabels: labels, tileable });
  }

  /** diffusers' ScoreSdeVePipeline: per step `correct_steps` Langevin corrections, then the predictor; the result is the last predictor mean. */
  private async sdeVe(steps: number, shape: number[], generator: Generator, guidance: GuidanceOptions, o: GenerateOptions): Promise<{ sample: Tensor; stepMs: number[] }> {
    const s = new ScoreSdeVeScheduler(this.schedulerConfig as Record<string, unknown>);
    s.setTimesteps(steps);
    const batch = shape[0];
    let x = await initialNoise(shape, s.initNoiseSigma, generator);
    let mean: Tensor | null = null;
    const stepMs: number[] = [];
    const started = performance.now();
    const model = this.model(o);
    try {
      for (let i = 0; i < s.timesteps.length; i++) {
        throwIfAborted(o.signal);
        const t0 = performance.now();
        const sigma = new Array<number>(batch).fill(s.sigmas[i]);
        for (let j = 0; j < s.config.correct_steps; j++) {
          const ev = await evaluate(model, x, sigma, guidance);
          const r = await s.stepCorrect(ev.output, x, { generator, guidanceScale: ev.guidanceScale, batchMean: false });
          ev.output.dispose();
          x.dispose();
          x = r.prevSample;
        }
        const ev = await evaluate(model, x, sigma, guidance);
        const r = await s.stepPred(ev.output, s.timesteps[i], x, { generator, guidanceScale: ev.guidanceScale });
        ev.output.dispose();
        x.dispose();
        mean?.dispose();
        x = r.prevSample;
        mean = r.prevSampleMean;
        stepMs.push(performance.now() - t0);
        o.onProgress?.({ step: i + 1, totalSteps: s.timesteps.length, timestep: s.timesteps[i], stepMs: stepMs[i], elapsedMs: performance.now() - started });
      }
      x.dispose();
      return { sample: mean!, stepMs };
    } catch (e) {
      x.dispose();
      mean?.dispose();
      throw e;
    }
  }

  dispose(): void {
    this.unet.dispose();
  }
}

/** The class a model_index.json entry such as "scheduler": ["diffusers", "DDPMScheduler"] names. */
function componentClass(index: Record<string, unknown>, key: string, indexPath: string): string {
  const entry = index[key];
  if (entry === undefined) throw new FusediffError('E_CONFIG', `${indexPath} has no "${key}" component`);
  if (!Array.isArray(entry) || entry.length !== 2 || typeof entry[1] !== 'string')
    throw new FusediffError('E_CONFIG', `${indexPath}: "${key}" must be [library, class name]`);
  return entry[1];
}

/**
 * Loads a diffusers pipeline in either checkpoint layout (checkpoint/layout.ts): a pipeline
 * folder (model_index.json, unet/, scheduler/), a model folder (config.json, weights and
 * scheduler_config.json side by side, as google/ddpm-* publish them) or a pipeline's unet/
 * folder. With no folder: the embedded default model (embedded.ts).
 */
export async function loadPipeline(dir?: string, options: LoadUNetOptions = {}): Promise<Pipeline> {
  if (dir === undefined) dir = embeddedModelDir();
  if (typeof dir !== 'string' || dir.length === 0) throw new FusediffError('E_ARGUMENT', 'loadPipeline expects a folder path');
  const layout = await locateModel(dir);
  // As in diffusers, the class model_index.json names is the scheduler's class: early
  // checkpoints' scheduler configs carry class names since renamed (google/ddpm-cifar10-32's
  // "GaussianDDPMScheduler" is a DDPMScheduler).
  let schedulerClass: string | undefined;
  let card: ModelCard = {};
  if (layout.modelIndex !== null) {
    const index = await readJsonFile(layout.modelIndex);
    if (typeof index !== 'object' || index === null || Array.isArray(index))
      throw new FusediffError('E_CONFIG', `${layout.modelIndex} must hold an object`);
    card = parseModelCard(index as Record<string, unknown>, layout.modelIndex);
    componentClass(index as Record<string, unknown>, 'unet', layout.modelIndex);
    schedulerClass = componentClass(index as Record<string, unknown>, 'scheduler', layout.modelIndex);
  }
  if (layout.schedulerConfig === null)
    throw new FusediffError('E_IO', `no scheduler_config.json for the model in ${dir}: a pipeline needs its scheduler`);
  const config = await readJsonFile(layout.schedulerConfig);
  if (typeof config !== 'object' || config === null || Array.isArray(config))
    throw new FusediffError('E_CONFIG', 'scheduler_config.json must hold an object');
  const schedulerConfig = schedulerClass === undefined ? config : { ...config, _class_name: schedulerClass };
  // Validate the scheduler before paying for the weights.
  schedulerFromConfig(schedulerConfig as Record<string, unknown>);
  const unet = await loadUNet(layout.unet, options);
  try {
    return new Pipeline(dir, unet, schedulerConfig as Record<string, unknown>, card);
  } catch (e) {
    unet.dispose();
    throw e;
  }
}
