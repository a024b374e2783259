/*
 * fusediff_cuda.h: the C ABI of libfusediff_cuda.so, the CUDA backend of fusediff.
 *
 * The Node addon never links this library: it dlopen()s it when a model is loaded with
 * device 'cuda' (native/backend/cuda_library.cpp), checks fdc_abi_version() against
 * FDC_ABI_VERSION, and resolves the functions below by name. Everything crossing the
 * boundary is plain C: integers, floats, POD structs and pointers. No C++ types, no
 * exceptions, no CUDA types (so the addon builds without a CUDA toolkit).
 *
 * Conventions
 *  - Every function that can fail returns an fdc_status; FDC_OK is 0. On failure,
 *    fdc_last_error() returns a message for the calling thread (valid until its next call).
 *  - A context (fdc_context) owns one device and one CUDA stream. Work is queued on the
 *    stream in call order; fdc_download() and fdc_synchronize() wait for it. A context must
 *    not be used by two threads at once (the caller serialises).
 *  - Pointers named `x`, `y`, `out`, tensors, weights, scratch: device memory from
 *    fdc_malloc(). Pointers documented as "host": ordinary host memory, read before the call
 *    returns.
 *  - Activations are NHWC float32, as in the CPU engine (native/kernels/kernels.h); each
 *    op has the same definition as its CPU reference (native/kernels/reference/).
 *
 * Versioning: FDC_ABI_VERSION changes whenever a signature or struct below changes; the
 * addon refuses a library with another version (E_BACKEND_UNAVAILABLE, naming both).
 */
#ifndef FUSEDIFF_CUDA_H
#define FUSEDIFF_CUDA_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define FDC_ABI_VERSION 1u

#if defined(FDC_BUILDING_LIBRARY)
#define FDC_API __attribute__((visibility("default")))
#else
#define FDC_API
#endif

typedef enum fdc_status {
  FDC_OK = 0,
  FDC_ERR_NO_DRIVER = 1,     /* libcuda.so.1 missing, a stub, or too old for this runtime */
  FDC_ERR_NO_DEVICE = 2,     /* a driver, but no usable device (or the index is out of range) */
  FDC_ERR_ARGUMENT = 3,      /* a bad argument (null pointer, negative size, unsupported shape) */
  FDC_ERR_OUT_OF_MEMORY = 4, /* device memory exhausted */
  FDC_ERR_UNSUPPORTED = 5,   /* a valid request this library does not implement */
  FDC_ERR_CUDA = 6,          /* any other CUDA error (the message names it) */
} fdc_status;

/* How convolutions multiply: plain float32 FMA (exact reference order aside), TF32 tensor
 * cores, or BF16 tensor cores; always float32 accumulation. */
typedef enum fdc_math {
  FDC_MATH_FP32 = 0,
  FDC_MATH_TF32 = 1,
  FDC_MATH_BF16 = 2,
} fdc_math;

typedef struct fdc_context fdc_context;

typedef struct fdc_device_props {
  char name[256];
  int major, minor; /* compute capability */
  int multiprocessors;
  int64_t total_memory;
} fdc_device_props;

/* --- Library and devices ------------------------------------------------------------- */
FDC_API uint32_t fdc_abi_version(void);
/* A static description of the build, e.g. "CUDA runtime 13.0, kernels for sm_80 sm_90 + PTX". */
FDC_API const char* fdc_build_info(void);
FDC_API const char* fdc_last_error(void);
/* The number of CUDA devices. No driver / no device are errors (FDC_ERR_NO_DRIVER,
 * FDC_ERR_NO_DEVICE), never a crash. */
FDC_API int fdc_device_count(int* count);
FDC_API int fdc_device_properties(int device, fdc_device_props* out);

/* --- Contexts and memory ------------------------------------------------------------- */
/* Fails with FDC_ERR_UNSUPPORTED on devices below compute capability 8.0. */
FDC_API int fdc_context_create(int device, fdc_context** out);
FDC_API void fdc_context_destroy(fdc_context* ctx);
FDC_API int fdc_malloc(fdc_context* ctx, int64_t bytes, void** out);
FDC_API int fdc_free(fdc_context* ctx, void* p);
FDC_API int fdc_upload(fdc_context* ctx, void* dst, const void* host_src, int64_t bytes);
FDC_API int fdc_download(fdc_context* ctx, void* host_dst, const void* src, int64_t bytes); /* waits */
FDC_API int fdc_memset_zero(fdc_context* ctx, void* dst, int64_t bytes);
FDC_API int fdc_synchronize(fdc_context* ctx);

/* --- Convolution (kernels.h: Conv2dParams + ConvEpilogue) ------------------------------ */
typedef struct fdc_conv2d_params {
  int batch;
  int in_h, in_w, in_c;
  int out_h, out_w, out_c;
  int kernel; /* 1 or 3 */
  int stride; /* 1 or 2 */
  int pad_top, pad_left;
  int circular; /* 0: zero padding; 1: wrap around */
} fdc_conv2d_params;

/* y = (acc + bias[co] + batch_bias[n * batch_bias_stride + co] + residual[n,oy,ox,co]) * output_scale;
 * every pointer nullable (device memory). */
typedef struct fdc_epilogue {
  const float* bias;
  const float* batch_bias;
  int64_t batch_bias_stride;
  const float* residual;
  float output_scale;
} fdc_epilogue;

/* Packed weights: [K][out_c] with K = (ky * kernel + kx) * in_c + ci (one row per im2col
 * column, NHWC order), float32 for FP32/TF32, bfloat16 for BF16. Packing runs on the host
 * from PyTorch's [out_c][in_c][k][k] (host memory) and uploads into `packed` (device memory
 * of fdc_packed_conv_bytes()). */
FDC_API int64_t fdc_packed_conv_bytes(int out_c, int in_c, int kernel, int math);
FDC_API int fdc_pack_conv(fdc_context* ctx, const float* oihw_host, int out_c, int in_c, int kernel, int math,
                          void* packed);
FDC_API int fdc_conv2d(fdc_context* ctx, const fdc_conv2d_params* p, const float* x, const void* packed, int math,
                       const fdc_epilogue* e, float* y);

/* --- GroupNorm (+ scale-shift) (+ SiLU) (kernels.h: GroupNormParams) ------------------- */
typedef struct fdc_group_norm_params {
  int batch;
  int64_t pixels;
  int channels, groups;
  float eps;
  const float* gamma; /* device */
  const float* beta;  /* device */
  const float* scale_shift; /* device, nullable */
  int64_t scale_shift_stride;
  int silu;
} fdc_group_norm_params;
FDC_API int fdc_group_norm(fdc_context* ctx, const fdc_group_norm_params* p, const float* x, float* y);

/* --- Attention over fused QKV (kernels.h: AttentionParams) ----------------------------- */
typedef struct fdc_attention_params {
  int batch, tokens, channels, heads;
  /* 0: three passes (scores to scratch, row softmax, P V); 1: one fused pass with an online
   * softmax, no scratch (head_dim = channels / heads at most 256; larger falls back to 0). */
  int fused;
} fdc_attention_params;
FDC_API int64_t fdc_attention_scratch_bytes(const fdc_attention_params* p);
FDC_API int fdc_attention(fdc_context* ctx, const fdc_attention_params* p, const float* qkv, float* out,
                          void* scratch);

/* --- Memory-bound ops (kernels/elementwise.h) ------------------------------------------ */
FDC_API int fdc_nchw_to_nhwc(fdc_context* ctx, const float* x, int batch, int channels, int height, int width,
                             int center, float* y);
/* divisor: device, nullable, one per image. */
FDC_API int fdc_nhwc_to_nchw(fdc_context* ctx, const float* x, int batch, int height, int width, int channels,
                             const float* divisor, float* y);
FDC_API int fdc_silu(fdc_context* ctx, const float* x, int64_t count, float* y);
FDC_API int fdc_add(fdc_context* ctx, const float* x, int64_t count, float* y); /* y += x */
FDC_API int fdc_upsample_nearest2x(fdc_context* ctx, const float* x, int batch, int height, int width, int channels,
                                   float* y);
FDC_API int fdc_avg_pool2x2(fdc_context* ctx, const float* x, int batch, int height, int width, int channels,
                            float* y);
FDC_API int fdc_concat_channels(fdc_context* ctx, const float* a, int ca, const float* b, int cb, int64_t pixels,
                                float* y);

/* --- Sampler steps (kernels/step.h) ---------------------------------------------------- */
enum { FDC_CLAMP_NONE = 0, FDC_CLAMP_RANGE = 1 }; /* dynamic thresholding: FDC_ERR_UNSUPPORTED */
enum { FDC_NOISE_CONSTANT = 0, FDC_NOISE_SQRTV = 1, FDC_NOISE_EXPV = 2 };

/* affine_step of kernels/step.h. Coefficient arrays and seeds are HOST arrays of `batch`
 * values (null: 0 / absent); tensors are device memory. */
typedef struct fdc_affine_step_params {
  int64_t batch, channels, pixels;
  const double *ax, *am, *az, *bx, *bm, *b0, *bz, *by, *e0, *e1; /* host */
  int clamp;
  double clamp_lo, clamp_hi;
  int noise_scale;
  /* model output view */
  const float* m;
  int64_t m_channels;
  int guided;
  double guidance_scale;
  /* noise: a tensor, or Philox from host seeds + stream, or neither */
  const float* z;
  const uint64_t* seeds; /* host */
  uint64_t stream;
  const float* y;
} fdc_affine_step_params;
FDC_API int fdc_affine_step(fdc_context* ctx, const fdc_affine_step_params* p, const float* x, float* out,
                            float* x0_out);
/* langevin_step of kernels/step.h (the annealed Langevin corrector): per image
 *   score = k_b m_b;  eps_b = 2 alpha_b (snr |z_b| / |score_b|)^2 (0 when |score_b| = 0; with
 *   batch_mean_norms both norms are batch means);  mean = x + eps_b score;  out = mean + sqrt(2 eps_b) z.
 * score_scale, alpha (nullable: 1) and seeds are HOST arrays of `batch`; step_sizes (nullable)
 * is a HOST array receiving eps_b (the call then waits for the device). The model output has
 * the sample's channel count (guided: 2 batch images). */
typedef struct fdc_langevin_params {
  int64_t batch, channels, pixels;
  const double* score_scale;
  const double* alpha;
  double snr;
  int batch_mean_norms;
  const float* m;
  int guided;
  double guidance_scale;
  const float* z;
  const uint64_t* seeds;
  uint64_t stream;
} fdc_langevin_params;
FDC_API int fdc_langevin_step(fdc_context* ctx, const fdc_langevin_params* p, const float* x, float* out,
                              float* mean_out, double* step_sizes);
/* out[b, i] = philox::normal_at(seeds[b], stream, i); seeds: host array of `batch`. */
FDC_API int fdc_philox_normal(fdc_context* ctx, float* out, int64_t batch, int64_t per_item, const uint64_t* seeds,
                              uint64_t stream);

/* --- INT8 convolution (quantized models) ----------------------------------------------
 * This library's own format (cuda/shared/conv_layout.h has the host twin):
 *   weights: per output channel co, s_w[co] = max|w[co]| / 127, q_w = round(w / s_w) in
 *     [-127, 127]; `packed` = int32 words [ceil(K / 4)][out_c], word (g, co) holding q_w of
 *     k = 4g + j in byte j (little-endian, zero past K; k as for fp32 packing), then out_c
 *     float scales s_w. Packed on the host from [out_c][in_c][k][k] float weights.
 *   inputs: quantized on the device per image, s_x[n] = max|x[n]| / 127, q_x = round(x / s_x).
 *   y = epilogue( (sum_k q_x q_w, int32) * s_x[n] * s_w[co] ).
 * `scratch`: fdc_conv2d_int8_scratch_bytes() of device memory. */
FDC_API int64_t fdc_packed_conv_int8_bytes(int out_c, int in_c, int kernel);
FDC_API int fdc_pack_conv_int8(fdc_context* ctx, const float* oihw_host, int out_c, int in_c, int kernel, void* packed);
FDC_API int64_t fdc_conv2d_int8_scratch_bytes(const fdc_conv2d_params* p);
FDC_API int fdc_conv2d_int8(fdc_context* ctx, const fdc_conv2d_params* p, const float* x, const void* packed,
                            const fdc_epilogue* e, float* y, void* scratch);

#ifdef __cplusplus
}
#endif
#endif /* FUSEDIFF_CUDA_H */
