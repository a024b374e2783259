/** The scheduler classes, and construction from a diffusers scheduler_config.json. */
import { FusediffError } from '../errors.js';
import { parsePythonJson } from '../json.js';
import { CMStochasticIterativeScheduler } from './consistency.js';
import { DDIMScheduler } from './ddim.js';
import { DDPMScheduler } from './ddpm.js';
import { DPMSolverMultistepScheduler } from './dpm_solver_multistep.js';
import { EulerAncestralDiscreteScheduler } from './euler_ancestral.js';
import { EulerDiscreteScheduler } from './euler.js';
import { ScoreSdeVeScheduler } from './score_sde_ve.js';
import { ScoreSdeVpScheduler } from './score_sde_vp.js';

export const SCHEDULER_CLASSES = {
  DDPMScheduler,
  DDIMScheduler,
  CMStochasticIterativeScheduler,
  EulerDiscreteScheduler,
  EulerAncestralDiscreteScheduler,
  DPMSolverMultistepScheduler,
  ScoreSdeVeScheduler,
  ScoreSdeVpScheduler,
} as const;

export type SchedulerClassName = keyof typeof SCHEDULER_CLASSES;
export type AnyScheduler = InstanceType<(typeof SCHEDULER_CLASSES)[SchedulerClassName]>;

/**
 * The scheduler a diffusers config describes (its `_class_name`), or `className` if given
 * (diffusers' `from_config`: keys the class does not know are ignored). `config` may be the
 * JSON text of scheduler_config.json.
 */
export function schedulerFromConfig(config: Record<string, unknown> | string, className?: string): AnyScheduler {
  const obj = typeof config === 'string' ? parsePythonJson(config, 'scheduler config') : config;
  if (typeof obj !== 'object' || obj === null || Array.isArray(obj)) throw new FusediffError('E_CONFIG', 'a scheduler config must be an object');
  const name = className ?? (obj as Record<string, unknown>)._class_name;
  if (typeof name !== 'string') throw new FusediffError('E_CONFIG', 'the scheduler config has no _class_name');
  const Klass = (SCHEDULER_CLASSES as Record<string, new (c: Record<string, unknown>) => AnyScheduler>)[name];
  if (!Klass)
    throw new FusediffError('E_UNSUPPORTED', `scheduler class "${name}" is not supported (supported: ${Object.keys(SCHEDULER_CLASSES).join(', ')})`);
  return new Klass(obj as Record<string, unknown>);
}

export {
  CMStochasticIterativeScheduler,
  DDIMScheduler,
  DDPMScheduler,
  DPMSolverMultistepScheduler,
  EulerAncestralDiscreteScheduler,
  EulerDiscreteScheduler,
  ScoreSdeVeScheduler,
  ScoreSdeVpScheduler,
};
