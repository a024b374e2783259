/**
 * Images in and out of a pipeline: 8-bit, interleaved, ready for a PNG encoder or a canvas.
 * Model samples in [−1, 1] become pixels the way diffusers' pipelines make them:
 * round(clamp(x/2 + 0.5, 0, 1)·255) (half to even, as numpy), in one native pass.
 */
import { FusediffError } from '../errors.js';
import { native } from '../native.js';
import { Tensor } from '../tensor.js';

export interface GeneratedImage {
  width: number;
  height: number;
  /** 3 (RGB) or 4 (RGBA), interleaved per pixel. */
  channels: 3 | 4;
  data: Uint8ClampedArray;
}

/** How samples map to [0, 1]: diffusers' (x/2 + 0.5) for [−1, 1] data, or x for [0, 1] data (score-SDE VE pipelines). */
export type SampleRange = 'minus-one-one' | 'zero-one';

/** A [B, C, H, W] sample batch as images (C = 1 is grey, replicated; C = 4 keeps its alpha). */
export async function toImages(sample: Tensor, options: { channels?: 3 | 4; range?: SampleRange } = {}): Promise<GeneratedImage[]> {
  const shape = sample.shape;
  if (shape.length !== 4) throw new FusediffError('E_SHAPE', `images need [batch, channels, height, width], got [${shape.join(', ')}]`);
  const [B, C, H, W] = shape;
  if (C !== 1 && C !== 3 && C !== 4) throw new FusediffError('E_UNSUPPORTED', `cannot make images from ${C} channels (1, 3 or 4)`);
  const channels = options.channels ?? (C === 4 ? 4 : 3);
  if (channels !== 3 && channels !== 4) throw new FusediffError('E_ARGUMENT', 'image channels must be 3 or 4');
  const source = C === 1 ? [0, 0, 0] : [0, 1, 2];
  if (channels === 4) source.push(C === 4 ? 3 : -1);
  const [scale, offset] = options.range === 'zero-one' ? [1, 0] : [0.5, 0.5];
  const bytes = await native().toImages(sample.handle, source, scale, offset);
  const per = H * W * channels;
  return Array.from({ length: B }, (_, b) => ({
    width: W,
    height: H,
    channels,
    data: new Uint8ClampedArray(bytes.buffer, bytes.byteOffset + b * per, per),
  }));
}

/** Images (all of one size) as a [B, C, H, W] sample batch in [−1, 1] (or [0, 1]): the inverse of toImages. */
export function fromImages(images: readonly GeneratedImage[], modelChannels: number, range: SampleRange = 'minus-one-one'): Tensor {
  if (!Array.isArray(images) || images.length === 0) throw new FusediffError('E_ARGUMENT', 'expected a non-empty list of images');
  const { width: W, height: H } = images[0];
  const out = new Float32Array(images.length * modelChannels * H * W);
  images.forEach((img, b) => {
    if (img.width !== W || img.height !== H) throw new FusediffError('E_SHAPE', 'all init images must have the same size');
    if (img.data.length !== W * H * img.channels) throw new FusediffError('E_SHAPE', `image ${b}: ${img.data.length} bytes do not make ${W}x${H}x${img.channels}`);
    for (let c = 0; c < modelChannels; c++) {
      const src = modelChannels === 1 ? -1 : Math.min(c, img.channels - 1);
      for (let p = 0; p < H * W; p++) {
        const v =
          src < 0
            ? (0.299 * img.data[p * img.channels] + 0.587 * img.data[p * img.channels + 1] + 0.114 * img.data[p * img.channels + 2]) / 255
            : img.data[p * img.channels + src] / 255;
        out[((b * modelChannels + c) * H * W) + p] = range === 'zero-one' ? v : 2 * v - 1;
      }
    }
  });
  return Tensor.fromFloat32(out, [images.length, modelChannels, H, W]);
}
